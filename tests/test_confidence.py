"""Confidence metrics (numpy) vs the reference fixture's confidence/* arrays, computed from the fixture's own
logits, plus the viewer JSON formats and pTM options."""
import json

import numpy as np
import pytest

from helpers import reference_path
from mindsponge_fold.common import confidence


def _within(ours, theirs, tol):
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    d = np.abs(ours - theirs)
    max_rel = d.max() / max(np.abs(theirs).max(), 1e-30)
    rms_rel = np.sqrt((d ** 2).mean()) / max(np.sqrt((theirs ** 2).mean()), 1e-30)
    print(f"max_abs {d.max():.2e} max_rel {max_rel:.2e} (tol {tol['max_abs_over_max_ref']:.1e}) "
          f"rms_rel {rms_rel:.2e} (tol {tol['rms_over_rms_ref']:.1e})")
    return max_rel <= tol["max_abs_over_max_ref"] and rms_rel <= tol["rms_over_rms_ref"]


@pytest.mark.parametrize("recycle", [1, 0])
def test_confidence_matches_reference(recycle):
    ref = np.load(reference_path(f"outputs_recycle{recycle}.npz"))
    tol = json.load(open(reference_path("suggested_tolerances.json")))
    plddt = confidence.compute_plddt(ref["predicted_lddt/logits"])
    pae = confidence.compute_predicted_aligned_error(ref["predicted_aligned_error/logits"],
                                                     ref["predicted_aligned_error/breaks"])
    ptm = confidence.predicted_tm_score(ref["predicted_aligned_error/logits"], ref["predicted_aligned_error/breaks"])
    ours = {"confidence/plddt": plddt, "confidence/predicted_aligned_error": pae["predicted_aligned_error"],
            "confidence/max_predicted_aligned_error": pae["max_predicted_aligned_error"], "confidence/ptm": ptm}
    for key, value in ours.items():
        assert np.asarray(value).dtype == np.float64, key
        assert np.shape(value) == ref[key].shape, key
        print(key, end=": ")
        assert _within(value, ref[key], tol["outputs:" + key]), key
    probs = pae["aligned_confidence_probs"]
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-12)


def test_ptm_weights_and_asym_id():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((30, 30, 64)) * 3
    breaks = np.linspace(0.0, 31.0, 63)
    full = confidence.predicted_tm_score(logits, breaks)
    assert 0.0 < full < 1.0
    assert confidence.predicted_tm_score(logits, breaks, residue_weights=np.ones(30)) == pytest.approx(full)
    # zero weight on residues 20.. equals scoring the 20-residue sub-problem
    w = np.r_[np.ones(20), np.zeros(10)]
    sub = confidence.predicted_tm_score(logits[:20, :20], breaks)
    assert confidence.predicted_tm_score(logits, breaks, residue_weights=w) == pytest.approx(sub, rel=1e-6)
    # a single chain has no interface: ipTM 0; two chains: only the cross-chain pairs count
    assert confidence.predicted_tm_score(logits, breaks, asym_id=np.zeros(30)) == 0.0
    iptm = confidence.predicted_tm_score(logits, breaks, asym_id=np.r_[np.zeros(15), np.ones(15)])
    assert 0.0 < iptm < 1.0 and iptm != pytest.approx(full)


def test_viewer_json_formats(tmp_path):
    ref = np.load(reference_path("outputs_recycle1.npz"))
    pae = ref["confidence/predicted_aligned_error"]
    path = tmp_path / "pae.json"
    confidence.write_pae_json(path, pae, ref["confidence/max_predicted_aligned_error"])
    data = json.loads(path.read_text())
    assert isinstance(data, list) and len(data) == 1
    assert set(data[0]) == {"predicted_aligned_error", "max_predicted_aligned_error"}
    matrix = np.asarray(data[0]["predicted_aligned_error"])
    assert matrix.shape == pae.shape
    np.testing.assert_allclose(matrix, pae, atol=0.05 + 1e-9)
    assert data[0]["max_predicted_aligned_error"] == pytest.approx(31.75)
    plddt = json.loads(confidence.plddt_json(np.array([95.0, 80.0, 60.0, 10.0])))
    assert plddt["residueNumber"] == [1, 2, 3, 4]
    assert plddt["confidenceCategory"] == ["H", "M", "L", "D"]


def test_confidence_metrics_bundle():
    ref = np.load(reference_path("outputs_recycle1.npz"))
    pred = {"predicted_lddt": {"logits": ref["predicted_lddt/logits"]},
            "predicted_aligned_error": {"logits": ref["predicted_aligned_error/logits"],
                                        "breaks": ref["predicted_aligned_error/breaks"]}}
    m = confidence.confidence_metrics(pred)
    assert m["mean_plddt"] == pytest.approx(ref["confidence/plddt"].mean(), rel=1e-6)
    assert m["ptm"] == pytest.approx(float(ref["confidence/ptm"]), rel=1e-5)
    no_pae = confidence.confidence_metrics({"predicted_lddt": pred["predicted_lddt"]})
    assert "ptm" not in no_pae and "predicted_aligned_error" not in no_pae
