"""numpy structural violations vs the reference (folding.find_structural_violations / compute_violation_metrics)."""
import types

import numpy as np
import pytest

from helpers import reference_path
from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.common import violations as V

CASES = [("losses_near_native.npz", "input/final_atom14_positions"),
         ("outputs_recycle1.npz", "structure_module/final_atom14_positions")]
DISCRETE = ("mask", "violations")


@pytest.fixture(scope="module")
def batch1():
    feats = np.load(reference_path("processed_features.npz"))
    return {k: feats[k][1] for k in ("aatype", "residue_index", "atom14_atom_exists", "seq_mask")}


@pytest.mark.parametrize("source, key", CASES)
def test_violations_match_reference(source, key, batch1):
    ref = np.load(reference_path(source))
    pos = ref[key]
    found = V.find_structural_violations(batch1["aatype"], batch1["residue_index"], batch1["atom14_atom_exists"], pos,
                                         violation_tolerance_factor=12.0, clash_overlap_tolerance=1.5)
    flat = V.flatten(found)
    expected = {k[len("structure_module/violations/"):]: ref[k] for k in ref.files
                if k.startswith("structure_module/violations/")}
    assert set(flat) == set(expected) and len(flat) == 11
    for name, want in expected.items():
        got = flat[name]
        assert np.shape(got) == want.shape, name
        if name.endswith(DISCRETE):
            np.testing.assert_array_equal(got, want, err_msg=name)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * max(1.0, np.abs(want).max()), err_msg=name)
    metrics = V.compute_violation_metrics(batch1["residue_index"], batch1["atom14_atom_exists"], batch1["seq_mask"],
                                          pos, found)
    for name, value in metrics.items():
        assert value == pytest.approx(float(ref["loss/structure_module/metrics/" + name]), rel=1e-5, abs=1e-7), name
    loss = V.structural_violation_loss(found, batch1["atom14_atom_exists"])
    assert loss == pytest.approx(float(ref["loss/structure_module/structural_violation"]), rel=1e-5)


def test_native_structure_and_injected_clash():
    """The experimental structure has (almost) no violations; moving one atom onto another residue's atom is
    flagged as a clash on both residues, and breaking a peptide bond flags both sides of the link."""
    truth = np.load(reference_path("ground_truth.npz"))
    feats = np.load(reference_path("processed_features.npz"))
    aatype, res_idx = feats["aatype"][0], feats["residue_index"][0]
    exists = truth["atom14_gt_exists"]
    pos = truth["atom14_gt_positions"].copy()
    base = V.find_structural_violations(aatype, res_idx, exists, pos)
    assert base["between_residues"]["connections_per_residue_violation_mask"].sum() == 0
    assert base["within_residues"]["per_atom_violations"].sum() == 0
    assert base["between_residues"]["bonds_c_n_loss_mean"] == pytest.approx(0.0, abs=1e-3)

    clashing = pos.copy()
    clashing[40, 4] = pos[60, 1] + np.array([0.5, 0.0, 0.0], np.float32)  # CB of 40 onto CA of 60
    hit = V.find_structural_violations(aatype, res_idx, exists, clashing)
    clash_mask = hit["between_residues"]["clashes_per_atom_clash_mask"]
    assert clash_mask[40, 4] == 1 and clash_mask[60, 1] == 1
    assert hit["total_per_residue_violations_mask"][[40, 60]].tolist() == [1.0, 1.0]
    assert hit["between_residues"]["clashes_mean_loss"] > base["between_residues"]["clashes_mean_loss"]

    broken = pos.copy()
    broken[51:] += np.array([3.0, 0.0, 0.0], np.float32)  # stretch the 50-51 peptide bond
    link = V.find_structural_violations(aatype, res_idx, exists, broken)
    mask = link["between_residues"]["connections_per_residue_violation_mask"]
    assert mask[50] == 1 and mask[51] == 1 and mask.sum() == 2
    # a residue-number gap means no peptide bond is expected there
    gapped = res_idx.copy()
    gapped[51:] += 1
    assert V.find_structural_violations(aatype, gapped, exists, broken)[
        "between_residues"]["connections_per_residue_violation_mask"].sum() == 0


def test_violation_metrics_on_protein_like():
    truth = np.load(reference_path("ground_truth.npz"))
    aatype = np.load(reference_path("processed_features.npz"))["aatype"][0]
    prot = types.SimpleNamespace(aatype=aatype, atom_positions=truth["all_atom_positions"],
                                 atom_mask=truth["all_atom_mask"], residue_index=np.arange(len(aatype)) + 1)
    metrics = V.violation_metrics(prot)
    assert metrics["num_residue_violations"] == len(metrics["residue_violations"]) == 0
    assert set(metrics["counts"]) == {"between_residue_bond", "between_residue_clash", "within_residue"}
    # drop residue 10's side chain atoms from the mask and put them at the origin: ignored, not clashing
    mask = truth["all_atom_mask"].copy()
    pos = truth["all_atom_positions"].copy()
    mask[10, 3:] = 0
    pos[10, 3:] = 0
    prot.atom_mask, prot.atom_positions = mask, pos
    assert V.violation_metrics(prot)["num_residue_violations"] == 0
    pos[10, rc.atom_order["CB"]] = pos[30, rc.atom_order["CA"]]
    mask[10, rc.atom_order["CB"]] = 1
    flagged = V.violation_metrics(prot)["residue_violations"]
    assert 10 in flagged and 30 in flagged
