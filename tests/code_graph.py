"""Static views of the package for the code-health tests (tests/test_code_health.py): the import graph between
the package's modules, and the definitions nothing refers to.

Both read source with ``ast`` only (nothing is imported), so they run in a second and see function-level imports.
"""
from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "mindsponge_fold"
IMPLICIT = {"construct", "bprop"}      # methods MindSpore calls, never referred to by name


def module_name(path: Path) -> str:
    parts = list(path.resolve().relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(*dirs: str) -> list[Path]:
    return [p for d in dirs for p in sorted((REPO / d).rglob("*.py"))]


def is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (REPO / rel).with_suffix(".py").is_file() or (REPO / rel / "__init__.py").is_file()


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def _from_base(path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    parts = module_name(path).split(".")
    keep = len(parts) - node.level + (1 if path.name == "__init__.py" else 0)
    return ".".join(parts[:keep] + ([node.module] if node.module else []))


def imports(path: Path) -> list[tuple[str, int]]:
    """(module, line) of every import in ``path``, function-level ones included. ``from M import x`` gives ``M.x``
    when that is a module, else ``M``; ``importlib.import_module("M")`` gives ``M`` (``<dynamic>`` when the name is
    computed)."""
    out = []
    for node in ast.walk(_parse(path)):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(path, node)
            out += [(f"{base}.{a.name}" if is_module(f"{base}.{a.name}") else base, node.lineno) for a in node.names]
        elif isinstance(node, ast.Call) and _call_name(node) in ("import_module", "__import__"):
            arg = node.args[0] if node.args else None
            out.append((arg.value if isinstance(arg, ast.Constant) else "<dynamic>", node.lineno))
    return out


def _call_name(node: ast.Call):
    return getattr(node.func, "attr", getattr(node.func, "id", None))


@dataclasses.dataclass(frozen=True)
class Definition:
    module: str
    name: str
    owner: str | None          # the class of a method
    path: Path
    line: int

    def __str__(self) -> str:
        where = f"{self.path.relative_to(REPO)}:{self.line}"
        return f"{where} {self.module}.{self.owner + '.' if self.owner else ''}{self.name}"


def definitions(path: Path) -> list[Definition]:
    """Top-level functions and classes, and the methods of top-level classes; dunders and decorated functions
    (decorators register them) are left out."""
    module = module_name(path)
    out = []
    for node in _parse(path).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.decorator_list:
            out.append(Definition(module, node.name, None, path, node.lineno))
        if isinstance(node, ast.ClassDef):
            out += [Definition(module, item.name, node.name, path, item.lineno) for item in node.body
                    if isinstance(item, ast.FunctionDef) and not item.decorator_list
                    and not item.name.startswith("__") and item.name not in IMPLICIT]
    return out


def references(path: Path) -> tuple[set, set]:
    """What ``path`` refers to: ``(module, name)`` pairs for module-level names (a name used in its own module,
    ``from M import name``, ``alias.name`` with ``alias`` bound to module M), and bare attribute names / identifier
    strings (``obj.method``, ``getattr(x, "name")``) for methods."""
    tree = _parse(path)
    module = module_name(path) if path.resolve().is_relative_to(REPO / PACKAGE) else None
    aliases, qualified, attributes = {}, set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = _from_base(path, node)
            for a in node.names:
                full = f"{base}.{a.name}"
                if is_module(full):
                    aliases[a.asname or a.name] = full
                else:
                    qualified.add((base, a.name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and module:
            qualified.add((module, node.id))
        elif isinstance(node, ast.Attribute):
            attributes.add(node.attr)
            target = _dotted(node.value, aliases)
            if target:
                qualified.add((target, node.attr))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
            attributes.add(node.value)
    return qualified, attributes


def _dotted(node, aliases: dict) -> str | None:
    """The module an expression like ``alias`` or ``pkg.sub`` stands for, if any."""
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, aliases)
        return f"{base}.{node.attr}" if base and is_module(f"{base}.{node.attr}") else None
    return None


def unused_definitions(users=(PACKAGE, "scripts", "tests")) -> list[Definition]:
    """Definitions of the package that no file under the ``users`` directories refers to."""
    qualified, attributes = set(), set()
    for path in python_files(*users):
        q, a = references(path)
        qualified |= q
        attributes |= a
    return [d for p in python_files(PACKAGE) for d in definitions(p)
            if ((d.module, d.name) not in qualified if d.owner is None else d.name not in attributes)]
