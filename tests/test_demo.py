"""The first-run demo (``scripts/run_demo.sh``): the bundled network (examples/weights/tiny_learn_1psm.npz, trained
by this project on 1psm chain A, see its card tiny_learn_1psm.md) folds 1psm A to the native (TM-score >= 0.8; the
card and README quote 0.93 measured); relax leaves 0 violations; the script's --help and its one-line errors."""
import csv
import json
import os
import subprocess

import pytest

from helpers import REPO_ROOT, shared_path
from mindsponge_fold.cli import main

WEIGHTS = REPO_ROOT / "examples" / "weights" / "tiny_learn_1psm.npz"
DEMO = REPO_ROOT / "scripts" / "run_demo.sh"


@pytest.fixture(scope="module")
def folded(tmp_path_factory):
    data = shared_path("data", "openfold_testdata")
    tmp = tmp_path_factory.mktemp("demo")
    out = tmp / "out"
    # the demo's predict command (scripts/run_demo.sh, default mode)
    assert main(["predict", "--fasta", str(REPO_ROOT / "examples" / "1psm_A.fasta"),
                 "--alignments-dir", str(data / "alignments" / "1psm_A"), "--output-dir", str(out),
                 "--models", f"tiny_learn_1psm={WEIGHTS}", "--config", "tiny_learn", "--num-recycle", "0",
                 "--models-to-relax", "best"]) == 0
    ev = tmp / "evaluation"
    assert main(["evaluate", "--predictions", str(out / "1psm_A" / "ranked_0.pdb"),
                 "--natives", str(data / "mmcifs" / "1psm.cif"), "--out", str(ev), "--match", "align"]) == 0
    with open(ev / "metrics.csv") as f:
        row = next(csv.DictReader(f))
    return {"dir": out / "1psm_A", "metrics": row}


def test_bundled_weights_are_small_and_documented():
    assert WEIGHTS.stat().st_size < 8 * 2 ** 20, WEIGHTS.stat().st_size
    card = WEIGHTS.with_suffix(".md").read_text()
    for fact in ("learn_demo.sh", "seed", "1psm", "not"):
        assert fact in card, fact


def test_bundled_network_folds_1psm_to_the_native(folded):
    m = folded["metrics"]
    assert int(m["n_matched"]) == int(m["n_native"]) == 38
    assert float(m["tm_score"]) >= 0.8, m           # measured 0.93 (card, README)
    assert float(m["lddt_ca"]) >= 0.8, m
    assert float(m["rmsd_ca"]) <= 2.0, m


def test_relax_leaves_no_violation(folded):
    relax = json.loads((folded["dir"] / "relax_metrics.json").read_text())
    assert relax["tiny_learn_1psm"]["remaining_violations_count"] == 0, relax


def _run_demo(*args, **env):
    return subprocess.run(["bash", str(DEMO), *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env})


def test_demo_help():
    r = _run_demo("--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: scripts/run_demo.sh"), r
    assert "--params-dir" in r.stdout and "not predict others" in r.stdout


@pytest.mark.parametrize("args, env, message", [
    ((), {"MSF_SHARED": "/nonexistent/shared"}, "set MSF_SHARED"),
    (("--params-dir", "/nonexistent/params"), {}, "no params_model_1_ptm.npz"),
    (("--bogus",), {}, "unknown option '--bogus'"),
    (("--random-weights", "--params-dir", "x"), {}, "exclude each other"),
])
def test_demo_one_line_errors(args, env, message):
    r = _run_demo(*args, **env)                   # checked before setup.sh runs: nothing is installed
    assert r.returncode == 2, r
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
