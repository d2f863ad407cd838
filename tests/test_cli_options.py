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
    """--set, --device, --ema, the preset flags and the search options are string literals only in
    commands/options.py."""
    import ast
    flags = {"--set", "--device", "--ema", "--config", "--preset", "--model", "--af-config", "--uniref90-database",
             "--pdb70-database", "--max-template-date"}
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
