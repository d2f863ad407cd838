"""The bad-input corpus (issue 17), split by subject into ``test_bad_input_parsers.py`` (FASTA, A3M, Stockholm,
template hits, mmCIF), ``test_bad_input_features.py`` (feature files, MindRecord, training and distillation sets),
``test_bad_input_config.py`` (weights, config overrides and files) and ``test_bad_input_commands.py`` (command-line
arguments, output paths, evaluate, relax), and its machinery here: one case per kind of malformed input, each run
through the command line in this process (:func:`run_cli`), asserting the exit status, the one line on stderr and
that nothing was left (:func:`check_case`).

Every refused case must exit with status 2, print exactly one non-empty line on stderr, ``mindsponge-fold
<command>: error: ...`` (predict's ``predict: ...`` progress lines aside), naming the file (or the config key /
option) and the problem, and leave the case's directory as it was (no output, no temporary files, no directory).
Where refusing would be wrong (an empty template-hit file, a DNA-looking sequence, atoms that relax had to rebuild,
a conversion that skipped every sample, a --val-data that will not be read) the input is used and one ``warning:``
line says what is odd. No case may compile a MindSpore graph: ``ModelRunner.run`` and ``TrainStep`` are replaced by
a failure (:func:`forbid_compile`; weights are still loaded into a built network to check them), so whatever is
wrong must be found before that.

The input files are written into each test's tmp_path by :class:`Bench` (small, made on the spot) or taken from
``../shared`` (real mmCIFs, alignments, reference features) through ``helpers.shared_path``. The runner calls
:func:`mindsponge_fold.cli.main` with an argv in this process (a subprocess per case would cost seconds of imports
each) and returns the exit status (argparse's ``SystemExit`` included), stdout and the non-empty lines of stderr.
:func:`snapshot` lists every file and directory under a root (hidden temporaries included), so a case can assert
that a refused run left nothing behind.

Count: the cases of the four corpus files (``test_the_corpus_is_large_enough`` keeps their sum above 180), plus the
bad-input cases kept in the modules that own those code paths and not repeated here (each parametrised case
counted): test_bad_inputs_data.py (parsers, mmCIF, make-features: 19), test_predict_errors.py (predict,
run-features, weights files: 35), test_config.py (config keys, types, values, AlphaFold configs: 40),
test_evaluate.py (9), test_relax.py (8), test_mindrecord.py (3), test_params.py (3), test_train_cli.py (21, most of
them the launch scripts') and test_cli_options.py (4): over 320 in all, well above the 128 classes issue 17 asks for.
"""
from __future__ import annotations

import dataclasses
import functools
import os
import re
from pathlib import Path

import numpy as np

from helpers import reference_path, shared_path
from mindsponge_fold import cli
from mindsponge_fold.commands import SUBCOMMANDS

# A 12-residue query: small files, fast pipelines.
QUERY = "MKVLAAGIVGLL"


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: list            # non-empty lines of stderr


def run_cli(argv, capsys) -> Result:
    """``mindsponge-fold ARGV`` in this process."""
    capsys.readouterr()
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as e:          # argparse (usage errors) exits
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return Result(code, out, [line for line in err.splitlines() if line.strip()])


def snapshot(root) -> set:
    """Every path under ``root`` (relative; files with their size and modification time)."""
    root = Path(root)
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root) + "/")
        for name in filenames:
            st = os.stat(os.path.join(dirpath, name))
            found.add((os.path.relpath(os.path.join(dirpath, name), root), st.st_size, st.st_mtime_ns))
    return found


class Bench:
    """Writes the input files of one case under ``root`` (a test's tmp_path); paths are returned as ``Path``."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, name: str) -> Path:
        return self.root / name

    def text(self, name: str, content: str) -> Path:
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        return path

    def bytes(self, name: str, content: bytes) -> Path:
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path

    def random(self, name: str, size: int = 2048, seed: int = 0) -> Path:
        """Random bytes (a binary file of no format)."""
        return self.bytes(name, np.random.default_rng(seed).bytes(size))

    def npz(self, name: str, arrays: dict) -> Path:
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)
        return path

    def directory(self, name: str) -> Path:
        path = self.path(name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def fasta(self, name: str = "q.fasta", sequence: str = QUERY, header: str = "q") -> Path:
        return self.text(name, f">{header}\n{sequence}\n")

    def alignments(self, name: str = "aln", files: dict | None = None, sequence: str = QUERY) -> Path:
        """An alignment directory: a valid bfd_uniclust_hits.a3m of ``sequence`` unless ``files`` replaces it
        (``{file name: text or bytes}``)."""
        root = self.directory(name)
        files = {"bfd_uniclust_hits.a3m": f">query\n{sequence}\n>hit\n{sequence[:-2]}--\n"} if files is None \
            else files
        for file_name, content in files.items():
            (self.bytes if isinstance(content, bytes) else self.text)(f"{name}/{file_name}", content)
        return root


# ------------------------------------------------------------------------------------------------------ the cases

@dataclasses.dataclass(frozen=True)
class Case:
    build: object                 # Bench -> argv
    needles: tuple                # substrings of the message; '@NAME' = the path of NAME in the case directory
    warn: bool = False            # a warning case: one 'warning:' line holding the needles, exit status `status`
    status: int = 0


CASES: dict[str, Case] = {}


class Corpus:
    """The cases of one corpus file: ``@corpus.case(NAME, *needles)`` registers a function Bench -> argv."""

    def __init__(self):
        self.cases: dict[str, Case] = {}

    def case(self, name: str, *needles: str, warn: bool = False, status: int = 0):
        def register(build):
            assert name not in self.cases, name
            self.cases[name] = Case(build, needles, warn, status)
            return build
        return register


# ------------------------------------------------------------------------------------------------ command lines

def make_features(w: Bench, *extra, fasta=None, align=None):
    return ["make-features", "--fasta", fasta or w.fasta(), "--alignments-dir", align or w.alignments(),
            "--out", w.path("raw.npz"), *extra]


def predict(w: Bench, *extra, fasta=None, align=None, models=("--models", "tiny", "--random-weights"),
            inputs=None):
    if inputs is None:
        inputs = ["--fasta", fasta or w.fasta(), "--alignments-dir", align or w.alignments()]
    return ["predict", "--output-dir", w.path("out"), "--device", "CPU", "--models-to-relax", "none", *models,
            *inputs, *extra]


def run_features(w: Bench, features, *extra, out=None):
    return ["run-features", "--features", features, "--config", "tiny", "--device", "CPU",
            "--out", out or w.path("o.npz"), *extra]


def evaluate(w: Bench, predictions, natives, *extra):
    return ["evaluate", "--predictions", predictions, "--natives", natives, "--out", w.path("eval"), *extra]


def relax(w: Bench, pdb, *extra):
    return ["relax", "--pdb", pdb, "--out", w.path("relaxed.pdb"), *extra]


def train(w: Bench, *extra, data=None):
    return ["train", "--config", "tiny_train", "--device", "CPU", "--no-progress", "--out", w.path("run"),
            "--data", data or w.path("data/train.mindrecord"), *extra]


def make_mindrecord(w: Bench, features_dir, *extra):
    return ["make-mindrecord", "--features-dir", features_dir, "--out", w.path("mr/train.mindrecord"),
            "--no-progress", *extra]


@functools.cache
def raw_reference() -> dict:
    with np.load(reference_path("raw_features.npz")) as f:
        return {k: f[k] for k in f.files}


@functools.cache
def processed_reference() -> dict:
    with np.load(reference_path("processed_features.npz")) as f:
        return {k: f[k] for k in f.files}


@functools.cache
def ground_truth_reference() -> dict:
    with np.load(reference_path("ground_truth.npz")) as f:
        return {k: f[k] for k in f.files}


def changed(features: dict, **changes) -> dict:
    """``features`` with some arrays replaced (None: removed)."""
    out = {k: v for k, v in features.items() if changes.get(k, 0) is not None}
    out.update({k: v for k, v in changes.items() if v is not None})
    return out


def mmcif(name: str):
    return shared_path("data", "openfold_testdata", "mmcifs", name)


def native(name: str = "T1031.pdb"):
    return shared_path("data", "casp14_dev", "natives", name)



# ------------------------------------------------------------------------------------------------------- the test

def forbid_compile(monkeypatch) -> None:
    """Every case is refused before a graph is compiled: running the network (or a training step) fails here."""
    from mindsponge_fold.model import runner
    from mindsponge_fold.train import step

    def compiled(*args, **kwargs):
        raise AssertionError("a bad-input case reached the compiled network")

    monkeypatch.setattr(runner.ModelRunner, "run", compiled)
    monkeypatch.setattr(step.TrainStep, "__init__", compiled)


def prefix(argv) -> str:
    """How an error line starts: ``mindsponge-fold COMMAND: error: `` (no command: ``mindsponge-fold: error: ``)."""
    return f"mindsponge-fold {argv[0]}: error: " if argv[0] in SUBCOMMANDS else "mindsponge-fold: error: "


def expand(needle: str, w: Bench) -> str:
    return re.sub(r"@(\S+?)(?=(:\d+)?$|\s)", lambda m: str(w.path(m.group(1))), needle)


def check_case(spec: Case, tmp_path, capsys, monkeypatch) -> None:
    """Run one case in ``tmp_path`` and assert what the module docstring says of it."""
    forbid_compile(monkeypatch)
    w = Bench(tmp_path)
    argv = [str(a) for a in spec.build(w)]
    before = snapshot(tmp_path)
    result = run_cli(argv, capsys)
    if argv[0] == "predict":         # predict's progress lines ('predict: loading model ...') are not messages
        result.err = [line for line in result.err if not line.startswith("predict: ")]
    needles = [expand(n, w) for n in spec.needles]
    if spec.warn:
        warnings = [line for line in result.err if line.startswith("warning: ")]
        assert len(warnings) == 1, result
        assert all(n in warnings[0] for n in needles), (needles, warnings[0])
        assert result.code == spec.status, result
        if spec.status == 2:
            assert len(result.err) == 2 and result.err[1].startswith(prefix(argv)), result
        else:
            assert len(result.err) == 1, result
        return
    assert result.code == 2, result
    assert len(result.err) == 1, result.err
    line = result.err[0]
    assert line.startswith(prefix(argv)), line
    missing = [n for n in needles if n not in line]
    assert not missing, (missing, line)
    assert snapshot(tmp_path) == before, "the refused run left files behind"
