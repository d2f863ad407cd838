"""Code-health checks over the package's source (``ast`` only, nothing imported; see ``code_graph``):

* layering: ``common <- data <- model <- train`` is the core, ``relax``, ``eval`` and ``predict`` build on it,
  ``commands`` (the command line) on everything, and ``mindsponge_fold.cli`` only dispatches to ``commands``: an
  import against that order (function-level and ``importlib`` imports included) fails here, naming the line;
* only the command layer sees argparse;
* no unused definitions: a function, class or method that nothing in the package, scripts or tests refers to
  fails here (delete it, or use it).
"""
from code_graph import PACKAGE, REPO, imports, module_name, python_files, unused_definitions

CORE = ("common", "data", "model", "train")      # each may import the ones before it
ALLOWED = {name: set(CORE[:i]) for i, name in enumerate(CORE)}
ALLOWED.update({
    "relax": set(CORE),
    "eval": set(CORE),
    "predict": set(CORE) | {"relax"},
    "commands": set(CORE) | {"relax", "eval", "predict"},
    "cli": {"common", "commands"},
})
# called by name from outside the package's source: the subcommand contract (mindsponge_fold.cli imports the
# command modules by a computed name)
ENTRY_POINTS = {("commands", "add_arguments"), ("commands", "run")}


def layer(module: str) -> str | None:
    """The package part a module belongs to (``None``: the package root, importable from anywhere)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_every_subpackage_has_a_layer():
    layers = {layer(module_name(p)) for p in python_files(PACKAGE)} - {None}
    assert layers == set(ALLOWED), layers ^ set(ALLOWED)


def test_no_import_against_the_layering():
    bad = []
    for path in python_files(PACKAGE):
        here = layer(module_name(path))
        for target, line in imports(path):
            if target == "<dynamic>":
                if here != "cli":
                    bad.append(f"{path.relative_to(REPO)}:{line}: import by a computed name")
                continue
            if not target.startswith(PACKAGE):
                continue
            there = layer(target)
            if there is not None and there != here and there not in ALLOWED[here]:
                bad.append(f"{path.relative_to(REPO)}:{line}: {here} imports {target} ({there} is not below {here})")
    assert not bad, "\n".join(bad)


def test_layering_check_sees_function_level_and_importlib_imports(tmp_path):
    """The checker itself: imports inside functions and through importlib count."""
    probe = REPO / PACKAGE / "model" / "_probe_for_test.py"
    probe.write_text("def f():\n    from mindsponge_fold.train import losses\n    import importlib\n"
                     "    importlib.import_module('mindsponge_fold.predict.run')\n")
    try:
        found = [t for t, _ in imports(probe)]
    finally:
        probe.unlink()
    assert "mindsponge_fold.train.losses" in found and "mindsponge_fold.predict.run" in found
    assert "train" not in ALLOWED["model"] and "predict" not in ALLOWED["model"]


def test_only_the_command_layer_uses_argparse():
    users = [str(p.relative_to(REPO)) for p in python_files(PACKAGE)
             if layer(module_name(p)) not in ("commands", "cli")
             and any(t == "argparse" for t, _ in imports(p))]
    assert not users, users



def test_no_unused_definitions():
    unused = [str(d) for d in unused_definitions() if (layer(d.module), d.name) not in ENTRY_POINTS]
    assert not unused, "defined but referred to nowhere (package, scripts, tests):\n" + "\n".join(unused)
