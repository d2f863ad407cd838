"""Gradient parity with AlphaFold (issue 12): ``scripts/check_parity.py --gradients`` on the reference fixture.

It runs ``mindsponge-fold run-features ... --ground-truth --teacher-forcing --gradients`` (the training step's own
loss net and gradient pass, here with the host-driven recomputation, the CPU default of ``use_remat``) and compares
d loss/total / d weight of every parameter with the fixture's ``gradients.npz`` at the tolerances of
``gradients_noise.json``. The plain gradient graph gives the same gradients as the recomputation (tests/test_remat.py).
"""
import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import REFERENCE, REPO_ROOT, reference_path

from mindsponge_fold.eval import parity


def test_compare_gradients_flags_a_wrong_or_missing_gradient():
    ref = {"grad/a": np.ones((3, 4)), "grad/b": np.zeros(5), "loss/total": np.float64(1.0)}
    tols = {"grad/a": {"max_abs_diff": 1e-3, "rms_diff": 1e-4}, "grad/b": {"max_abs_diff": 1e-3, "rms_diff": 1e-4}}
    ours = {"grad/a": ref["grad/a"] + 5e-4, "grad/b": ref["grad/b"].copy()}
    rows = {r["name"]: r for r in parity.compare_gradients(ours, ref, tols)}
    assert set(rows) == {"grad/a", "grad/b"}
    assert not rows["grad/a"]["ok"] and rows["grad/a"]["ratio"] == pytest.approx(5.0)    # rms 5e-4 > 1e-4
    assert rows["grad/b"]["ok"] and rows["grad/b"]["ratio"] == 0.0
    missing = parity.compare_gradients({"grad/a": ref["grad/a"]}, ref, tols)
    assert [r["ok"] for r in missing] == [True, False] and "missing" in missing[1]["problem"]
    assert parity.global_norm(ref) == pytest.approx(np.sqrt(12.0))


def test_run_features_gradients_needs_ground_truth(tmp_path):
    features = reference_path("processed_features.npz")
    proc = subprocess.run([sys.executable, "-m", "mindsponge_fold.cli", "run-features", "--features", str(features),
                           "--config", "tiny", "--out", str(tmp_path / "o.npz"), "--gradients",
                           str(tmp_path / "g.npz")], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "--gradients needs --ground-truth" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.npz").exists() and not (tmp_path / "g.npz").exists()


@pytest.mark.slow
def test_gradients_match_the_reference_fixture(tmp_path):
    for name in ("gradients.npz", "gradients_noise.json", "params.npz", "ground_truth.npz"):
        reference_path(name)
    report_file = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, "scripts/check_parity.py", "--gradients", "--fixture", str(REFERENCE),
                           "--out-dir", str(tmp_path), "--json", str(report_file),
                           "--set", "model.global_config.use_remat=host"],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=1800)
    report = json.loads(report_file.read_text())
    with np.load(reference_path("params.npz")) as f:
        num_params = len(f.files)
    grads = report["gradients"]
    assert grads["compared"] == num_params, proc.stdout[-3000:]
    failing = [r["name"] for r in grads["rows"] if not r["ok"]]
    assert not failing, proc.stdout[-3000:]
    norms = grads["global_norm"]
    assert norms["ours"] == pytest.approx(norms["reference"], rel=2e-3)          # measured 6.7e-4
    assert proc.returncode == 0 and "PARITY OK" in proc.stdout
    ours = np.load(tmp_path / "gradients.npz")
    assert sum(k.startswith("grad/") for k in ours.files) == num_params
