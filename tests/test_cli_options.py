"""The shared command-line options (mindsponge_fold.commands.options): one preset flag ``--config`` with the older
names ``--preset`` / ``--model`` as aliases, and ``--set`` / ``--device`` / ``--ema`` declared in one place."""
import argparse

import pytest

from code_graph import REPO, python_files
from mindsponge_fold.cli import main
from mindsponge_fold.commands import SUBCOMMANDS, options

CONFIG_COMMANDS = {"run-features": "model_1_ptm", "convert-params": "model_1_ptm", "params-table": "model_1_ptm",
                   "train": "train_initial", "relax": None, "make-mindrecord": None, "predict": None}


def parser_of(name):
    import importlib
    module = importlib.import_module(f"mindsponge_fold.commands.{SUBCOMMANDS[name][0]}")
    parser = argparse.ArgumentParser(prog=name)
    module.add_arguments(parser)
    return parser


REQUIRED = {"run-features": ["--features", "f", "--out", "o"], "convert-params": ["a.npz", "b.ckpt"],
            "params-table": [], "train": ["--data", "d"], "relax": ["--pdb", "p", "--out", "o"],
            "make-mindrecord": ["--features-dir", "f", "--out", "o"], "predict": ["--output-dir", "o"]}


@pytest.mark.parametrize("name", sorted(CONFIG_COMMANDS))
def test_config_flag_and_its_aliases(name):
    parser = parser_of(name)
    assert parser.parse_args(REQUIRED[name]).config == CONFIG_COMMANDS[name]        # defaults unchanged
    flags = ["--config", "--preset"] + ([] if name == "predict" else ["--model"])
    for flag in flags:
        args = parser.parse_args(REQUIRED[name] + [flag, "tiny", "--set", "a.b=1", "--set", "c=2"])
        assert args.config == "tiny" and args.overrides == ["a.b=1", "c=2"], flag


def test_predict_has_no_model_alias():
    """predict has --models (and --models-to-relax): a --model alias there would be a trap; --model stays the
    ambiguous abbreviation it was."""
    with pytest.raises(SystemExit) as e:
        parser_of("predict").parse_args(["--output-dir", "o", "--model", "model_1"])
    assert e.value.code == 2


def test_device_choices_and_defaults():
    for name in ("train", "run-features", "predict"):
        assert parser_of(name).parse_args(REQUIRED[name]).device == "auto"
        assert parser_of(name).parse_args(REQUIRED[name] + ["--device", "GPU"]).device == "GPU"
    with pytest.raises(SystemExit) as e:
        parser_of("run-features").parse_args(REQUIRED["run-features"] + ["--device", "TPU"])
    assert e.value.code == 2


def test_device_auto_picks_an_available_backend_and_a_missing_one_is_an_error(capsys):
    """This machine is CPU-only: auto resolves to CPU and says so; GPU/Ascend named explicitly are one-line errors."""
    import mindspore as ms

    from mindsponge_fold.common.errors import InputError
    assert options.resolve_device("auto") == "CPU" and "device: CPU (--device auto)" in capsys.readouterr().out
    assert options.resolve_device("CPU") == "CPU"
    for name in ("GPU", "Ascend"):
        if ms.hal.is_available(name):
            continue
        with pytest.raises(InputError, match=f"--device {name}: not available here"):
            options.resolve_device(name)


def test_shared_options_are_declared_once():
    """--set, --device, --ema, the preset flags, the search options, the model options of predict and
    make-distillation-set, --no-bucket / --compile-cache and --no-progress are string literals only in
    commands/options.py."""
    import ast
    flags = {"--set", "--device", "--ema", "--config", "--preset", "--model", "--af-config", "--uniref90-database",
             "--pdb70-database", "--max-template-date", "--models", "--params-dir", "--random-weights",
             "--num-recycle", "--seed", "--no-bucket", "--compile-cache", "--no-progress"}
    where = {}
    for path in python_files("mindsponge_fold"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in flags:
                where.setdefault(node.value, set()).add(str(path.relative_to(REPO)))
    assert set(where) == flags
    assert all(files == {"mindsponge_fold/commands/options.py"} for files in where.values()), where


def test_aliases_give_the_same_run(capsys):
    """params-table of the tiny preset: --config, --preset and --model select the same model."""
    outputs = []
    for flag in ("--config", "--preset", "--model"):
        assert main(["params-table", flag, "tiny"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1] == outputs[2]
    assert "model_1_ptm" not in outputs[0] and "# " in outputs[0]
    assert main(["params-table", "--config", "no_such_preset"]) == 2
    assert "unknown config preset 'no_such_preset'" in capsys.readouterr().err


# Flags that more than one command declares itself, each with a meaning of its own there (not one option twice).
OWN_MEANING = {"--fasta": "predict's targets (options.py); evaluate: predict first; make-features: one query",
               "--features": "predict: raw or processed features of one target; run-features: processed only",
               "--ground-truth": "make-features: MMCIF:CHAIN labels; run-features: a ground-truth .npz",
               "--mmcif-dir": "make-mindrecord: labels; make-training-set: the whole set (required)",
               "--max-length": "predict: default the largest bucket; make-distillation-set: no limit",
               "--out": "each command's own output file", "--output-dir": "each command's own output tree",
               "--workers": "make-training-set: chain processes; train: data workers"}


def declared_flags(path) -> set:
    """The option strings of the ``add_argument`` calls in one source file."""
    import ast
    return {arg.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument"
            for arg in node.args if isinstance(arg, ast.Constant) and str(arg.value).startswith("--")}


def test_no_command_redeclares_another_commands_option():
    """A flag declared by two command modules is one option written twice (make-distillation-set once re-declared
    predict's model options): it belongs in commands/options.py, unless it means something else in each command."""
    commands = [p for p in python_files("mindsponge_fold/commands") if p.name not in ("options.py", "__init__.py")]
    where = {}
    for path in commands:
        for flag in declared_flags(path):
            where.setdefault(flag, set()).add(path.name)
    twice = {flag: files for flag, files in where.items() if len(files) > 1}
    assert set(twice) <= set(OWN_MEANING), {f: sorted(twice[f]) for f in set(twice) - set(OWN_MEANING)}
    assert all(len(where.get(flag, ())) > 1 for flag in OWN_MEANING), "OWN_MEANING lists a flag no longer twice"


def test_the_redeclaration_check_sees_a_copied_option(tmp_path):
    """The check itself: predict's --models written again in another module is found."""
    probe = tmp_path / "probe.py"
    probe.write_text('def add_arguments(parser):\n    parser.add_argument("--models", action="append")\n'
                     '    g = parser.add_argument_group("x")\n    g.add_argument("--params-dir", "-p")\n')
    assert declared_flags(probe) == {"--models", "--params-dir"}


def test_predict_and_distillation_share_the_model_options():
    """make-distillation-set takes predict's model and alignment options with the same dest, default and type."""
    predict, distill = parser_of("predict"), parser_of("make-distillation-set")

    def actions(parser):
        return {a.option_strings[0]: (a.dest, a.default, a.type, a.choices, a.option_strings, a.help)
                for a in parser._actions if a.option_strings}
    p, d = actions(predict), actions(distill)
    shared = ("--alignments-dir", "--single-sequence", "--params-dir", "--random-weights", "--set", "--num-recycle",
              "--seed", "--ema", "--device")
    assert all(p[flag] == d[flag] for flag in shared), [f for f in shared if p[f] != d[f]]
    assert p["--config"][:-1] == d["--config"][:-1] and p["--models"][:-1] == d["--models"][:-1]   # help: own
    args = distill.parse_args(["--fasta", "q.fasta", "--output-dir", "o", "--models", "tiny", "--random-weights",
                               "--num-recycle", "1", "--seed", "3", "--single-sequence", "--preset", "tiny"])
    settings = options.model_settings(args)
    assert (settings.models, settings.random_weights, settings.num_recycle, settings.seed, settings.preset) == \
        (("tiny",), True, 1, 3, "tiny")
    assert options.feature_settings(args).single_sequence
    with pytest.raises(SystemExit):
        distill.parse_args(["--output-dir", "o"])                    # --fasta stays required there
