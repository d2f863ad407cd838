"""Evaluation metrics (mindsponge_fold.eval): TM-score/GDT vs the TMscore program on real pairs, lDDT vs independent
formulations (a dense re-implementation, AlphaFold's lddt formula, a hand-computed case), invariances, residue
matching."""
import re
import shutil
import subprocess

import numpy as np
import pytest

from helpers import shared_path
from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.eval import inputs
from mindsponge_fold.common.lddt import lddt
from mindsponge_fold.eval.matching import by_alignment, match_residues
from mindsponge_fold.eval.metrics import CA, Chain, score_model
from mindsponge_fold.eval.superposition import apply_transform, superpose, superposed_rmsd
from mindsponge_fold.eval.tmscore import seed_lengths, tm_d0, tm_gdt_search


def _random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def transform_pdb_text(text: str, fn) -> str:
    """Apply ``fn`` ((N, 3) -> (N, 3)) to the coordinate columns of the ATOM/HETATM records (PDB fixed columns)."""
    lines = text.splitlines()
    rows = [i for i, line in enumerate(lines) if line.startswith(("ATOM  ", "HETATM"))]
    xyz = np.array([[float(lines[i][c:c + 8]) for c in (30, 38, 46)] for i in rows])
    new = fn(xyz)
    for i, (x, y, z) in zip(rows, new):
        lines[i] = f"{lines[i][:30]}{x:8.3f}{y:8.3f}{z:8.3f}{lines[i][54:]}"
    return "\n".join(lines) + "\n"


def _native(name):
    return shared_path("data", "casp14_dev", "natives", name)


def _data(*parts):
    return shared_path("data", *parts)


# ----------------------------------------------------------------------------------------------------- superposition
def test_superpose_recovers_a_rigid_motion():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 3)) * 10
    rot = _random_rotation(rng)
    y = x @ rot.T + np.array([3.0, -7.0, 12.0])
    r, t = superpose(x, y)
    np.testing.assert_allclose(r, rot, atol=1e-10)
    assert np.linalg.det(r) == pytest.approx(1.0)
    assert superposed_rmsd(x, y) < 1e-9
    # a mirror image cannot be fitted by a proper rotation
    assert superposed_rmsd(x, x * np.array([1, 1, -1])) > 1.0


def test_d0_and_seed_lengths_follow_tmscore():
    assert tm_d0(148) == pytest.approx(1.24 * (148 - 15) ** (1 / 3) - 1.8)
    assert tm_d0(20) == 0.5 and tm_d0(5) == 0.5
    assert seed_lengths(148) == [148, 74, 37, 18, 9, 4]
    assert seed_lengths(1000) == [1000, 500, 250, 125, 62, 4]
    assert seed_lengths(6) == [6, 4]
    assert seed_lengths(3) == [3]


# ----------------------------------------------------------------------------------------------- TMscore agreement
def _run_tmscore(model_path, native_path):
    out = subprocess.run(["TMscore", str(model_path), str(native_path)], capture_output=True, text=True,
                         timeout=60).stdout

    def grab(pattern):
        m = re.search(pattern, out)
        assert m, f"TMscore output lacks {pattern!r}:\n{out}"
        return float(m.group(1))

    return {"tm_score": grab(r"TM-score\s*=\s*([\d.]+)"), "d0": grab(r"TM-score\s*=\s*[\d.]+\s+\(d0=\s*([\d.]+)"),
            "gdt_ts": 100 * grab(r"GDT-TS-score=\s*([\d.]+)"), "gdt_ha": 100 * grab(r"GDT-HA-score=\s*([\d.]+)"),
            "rmsd_ca": grab(r"RMSD of  the common residues=\s*([\d.]+)"),
            "n_common": grab(r"Number of residues in common=\s*(\d+)"), "n_native": grab(r"Length=\s*(\d+)\s*\(by")}


def _real_pairs(tmp_path):
    """(model, native) files: AlphaFold models of T1043, a relaxed/unrelaxed pair, unrelated natives (numbering
    overlap only), and T1043 with seeded noise or a 40-degree hinge motion of its C-terminal half."""
    t1043 = _native("T1043.pdb")
    text = t1043.read_text()
    rng = np.random.default_rng(7)
    noisy = tmp_path / "T1043_noise.pdb"
    noisy.write_text(transform_pdb_text(text, lambda xyz: xyz + rng.normal(0, 1.5, xyz.shape)))
    hinge = tmp_path / "T1043_hinge.pdb"
    ca_lines = [line for line in text.splitlines() if line.startswith("ATOM") and line[12:16] == " CA "]
    pivot = np.array([float(ca_lines[74][c:c + 8]) for c in (30, 38, 46)])
    resnum = np.array([int(line[22:26]) for line in text.splitlines() if line.startswith(("ATOM  ", "HETATM"))])
    th = np.deg2rad(40)
    rot = np.array([[1, 0, 0], [0, np.cos(th), -np.sin(th)], [0, np.sin(th), np.cos(th)]])
    hinge.write_text(transform_pdb_text(
        text, lambda xyz: np.where((resnum > 75)[:, None], (xyz - pivot) @ rot.T + pivot, xyz)))
    relaxed = _data("openfold_examples", "monomer", "sample_predictions", "6KWC_1_model_1_ptm_relaxed.pdb")
    return [
        (_data("alphafold_testdata", "relax", "with_violations.pdb"), t1043),
        (_data("alphafold_testdata", "relax", "with_violations_casp14.pdb"), t1043),
        (_data("openfold_examples", "monomer", "sample_predictions", "6KWC_1_model_1_ptm_unrelaxed.pdb"), relaxed),
        (_native("T1031.pdb"), t1043),
        (_native("T1043.pdb"), _native("T1026.pdb")),
        (noisy, t1043),
        (hinge, t1043),
    ]


@pytest.mark.tools
def test_tm_gdt_rmsd_agree_with_tmscore_program(tmp_path):
    if shutil.which("TMscore") is None:
        pytest.skip("TMscore binary not installed (scripts/setup.sh --tools installs tm-align)")
    seen_tm = []
    for model_path, native_path in _real_pairs(tmp_path):
        ref = _run_tmscore(model_path, native_path)
        model, native = inputs.read_chain(model_path), inputs.read_chain(native_path)
        s = score_model(model, native, matching="number")  # TMscore pairs residues by number
        where = f"{model_path.name} vs {native_path.name}"
        assert s.n_native == ref["n_native"] and s.n_matched == ref["n_common"], where
        # equal up to TMscore's printed rounding: half a unit of its last digit (TM-score and the GDT fractions 4
        # decimals, RMSD 3, d0 2). Measured worst: TM 3.1e-5, GDT 0.0046 points, RMSD 4.6e-4, d0 2.3e-3.
        eps = 1e-9
        assert abs(s.tm_score - ref["tm_score"]) <= 5e-5 + eps, (where, s.tm_score, ref)
        assert abs(s.gdt_ts - ref["gdt_ts"]) <= 0.005 + eps, (where, s.gdt_ts, ref)
        assert abs(s.gdt_ha - ref["gdt_ha"]) <= 0.005 + eps, (where, s.gdt_ha, ref)
        assert abs(s.rmsd_ca - ref["rmsd_ca"]) <= 5e-4 + eps, (where, s.rmsd_ca, ref)
        assert abs(tm_d0(s.n_native) - ref["d0"]) <= 5e-3 + eps
        seen_tm.append(ref["tm_score"])
    # the pairs span the range: near-identical, same fold, unrelated
    assert max(seen_tm) > 0.95 and min(seen_tm) < 0.2 and any(0.4 < t < 0.9 for t in seen_tm)


def test_search_beats_a_single_global_superposition():
    """With a rigid-body hinge the best TM superposition fits one half; one global fit is clearly worse."""
    rng = np.random.default_rng(1)
    n = 120
    t = np.linspace(0, 8 * np.pi, n)
    native = np.stack([10 * np.cos(t), 10 * np.sin(t), np.linspace(0, 60, n)], 1)
    model = native.copy()
    rot = _random_rotation(rng)
    model[60:] = (model[60:] - model[60]) @ rot.T + model[60]
    res = tm_gdt_search(model, native)
    r, tr = superpose(model, native)
    d = np.linalg.norm(apply_transform(model, r, tr) - native, axis=1)
    global_tm = np.mean(1 / (1 + (d / tm_d0(n)) ** 2))
    assert res.tm_score > global_tm + 0.1
    assert res.tm_score >= 0.5  # at least the half that moved rigidly superposes perfectly
    assert res.gdt_fractions[1.0] >= 0.5


# ---------------------------------------------------------------------------------------------------------- lDDT
def test_lddt_hand_computed_three_atoms():
    native = np.array([[0, 0, 0], [3, 0, 0], [0, 4, 0]], float)[:, None, :]
    model = native.copy()
    model[2, 0, 1] += 1.5  # d13: 4 -> 5.5 (|diff| 1.5), d23: 5 -> sqrt(9 + 30.25) (|diff| 1.265)
    mask = np.ones((3, 1))
    res = lddt(model, mask, native, mask)
    # conserved thresholds: d12 4 of 4, d13 2 of 4 (2, 4 A), d23 2 of 4
    assert res.score == pytest.approx(8 / 12)
    np.testing.assert_allclose(res.per_residue, [6 / 8, 6 / 8, 4 / 8])
    assert res.n_contacts == 3
    # beyond the inclusion radius nothing is scored; a missing model atom fails its contacts
    far = lddt(model * 10, mask, native * 10, mask)
    assert far.n_contacts == 0 and np.isnan(far.score)
    missing = lddt(model, np.array([[1], [1], [0]]), native, mask)
    assert missing.score == pytest.approx(4 / 12) and np.isnan(missing.per_residue[2])


def _dense_lddt(model_pos, model_mask, native_pos, native_mask, cutoff=15.0):
    """Straightforward re-implementation: full distance matrices over the native atoms, OpenStructure's definition."""
    res_id, atom_id = np.nonzero(native_mask)
    p, q = native_pos[res_id, atom_id], model_pos[res_id, atom_id]
    present = model_mask[res_id, atom_id] > 0
    d_nat = np.linalg.norm(p[:, None] - p[None], axis=-1)
    d_mod = np.linalg.norm(q[:, None] - q[None], axis=-1)
    scored = (d_nat < cutoff) & (res_id[:, None] != res_id[None])
    ok = present[:, None] & present[None]
    diff = np.abs(d_nat - d_mod)
    kept = sum(((diff <= t) & ok).astype(int) for t in (0.5, 1.0, 2.0, 4.0)) * scored
    per_res = np.array([kept[res_id == r].sum() / max(1, 4 * scored[res_id == r].sum())
                        for r in range(native_mask.shape[0])])
    return kept.sum() / (4 * scored.sum()), per_res


def test_lddt_matches_dense_reimplementation_on_real_pair():
    native = inputs.read_chain(_native("T1043.pdb"))
    model = inputs.read_chain(_data("alphafold_testdata", "relax", "with_violations.pdb"))
    # drop the side chains of every 7th model residue so missing-atom handling is exercised
    model_mask = model.atom_mask.copy()
    model_mask[::7, 5:] = False
    assert (native.residue_index == model.residue_index).all()
    ref_global, ref_per_res = _dense_lddt(model.atom_positions, model_mask, native.atom_positions, native.atom_mask)
    got = lddt(model.atom_positions, model_mask, native.atom_positions, native.atom_mask, resolve_symmetry=False)
    assert got.score == pytest.approx(ref_global, abs=1e-12)
    np.testing.assert_allclose(got.per_residue, ref_per_res, atol=1e-12)


def _alphafold_lddt(pred, true, mask, cutoff=15.0, per_residue=False):
    """AlphaFold's model/lddt.py formula (numpy transcription of its semantics)."""
    d_true = np.sqrt(1e-10 + np.sum((true[:, None] - true[None]) ** 2, -1))
    d_pred = np.sqrt(1e-10 + np.sum((pred[:, None] - pred[None]) ** 2, -1))
    to_score = (d_true < cutoff) * mask[:, None] * mask[None] * (1 - np.eye(len(true)))
    l1 = np.abs(d_true - d_pred)
    score = 0.25 * sum((l1 < t).astype(float) for t in (0.5, 1.0, 2.0, 4.0))
    axes = (-1,) if per_residue else (-2, -1)
    return (1e-10 + np.sum(to_score * score, axis=axes)) / (1e-10 + np.sum(to_score, axis=axes))


def test_lddt_ca_equals_alphafold_formula():
    native = inputs.read_chain(_native("T1043.pdb"))
    model = inputs.read_chain(_data("alphafold_testdata", "relax", "with_violations_casp14.pdb"))
    s = score_model(model, native)
    x, y = model.atom_positions[:, CA], native.atom_positions[:, CA]
    assert s.lddt_ca == pytest.approx(_alphafold_lddt(x, y, np.ones(len(y))), abs=1e-9)
    per_res = lddt(x[:, None], np.ones((len(x), 1)), y[:, None], np.ones((len(y), 1))).per_residue
    np.testing.assert_allclose(per_res, _alphafold_lddt(x, y, np.ones(len(y)), per_residue=True), atol=1e-9)


def test_lddt_resolves_symmetric_side_chain_naming():
    native = inputs.read_chain(_native("T1043.pdb"))
    names = [rc.restype_1to3[rc.restypes_with_x[a]] if a < 20 else "UNK" for a in native.aatype]
    model_pos = native.atom_positions.copy()
    swaps = {"ASP": [("OD1", "OD2")], "GLU": [("OE1", "OE2")], "PHE": [("CD1", "CD2"), ("CE1", "CE2")],
             "TYR": [("CD1", "CD2"), ("CE1", "CE2")], "ARG": [("NH1", "NH2")]}
    n_swapped = 0
    for r, name in enumerate(names):
        for a, b in swaps.get(name, []):
            ia, ib = rc.atom_order[a], rc.atom_order[b]
            if native.atom_mask[r, ia] and native.atom_mask[r, ib]:
                model_pos[r, [ia, ib]] = model_pos[r, [ib, ia]]
                n_swapped += 1
    assert n_swapped > 10
    args = (model_pos, native.atom_mask, native.atom_positions, native.atom_mask)
    plain = lddt(*args, resolve_symmetry=False)
    resolved = lddt(*args, residue_names=names, atom_names=rc.atom_types)
    assert plain.score < 0.999
    assert resolved.score == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ invariance, identity
def _moved(chain: Chain, rot, shift) -> Chain:
    out = chain.take(np.arange(len(chain)))
    out.atom_positions = chain.atom_positions @ rot.T + shift
    return out


def test_identical_structures_score_perfectly():
    native = inputs.read_chain(_native("T1031.pdb"))
    rng = np.random.default_rng(3)
    s = score_model(_moved(native, _random_rotation(rng), rng.normal(size=3) * 50), native)
    assert s.tm_score == pytest.approx(1.0) and s.gdt_ts == pytest.approx(100) and s.gdt_ha == pytest.approx(100)
    assert s.lddt == pytest.approx(1.0) and s.lddt_ca == pytest.approx(1.0) and s.rmsd_ca < 1e-6
    assert s.n_native == s.n_matched == len(native)


def test_every_metric_is_invariant_to_rigid_motion_of_the_model():
    native = inputs.read_chain(_native("T1043.pdb"))
    model = inputs.read_chain(_data("alphafold_testdata", "relax", "with_violations.pdb"))
    base = score_model(model, native)
    rng = np.random.default_rng(11)
    for _ in range(2):
        moved = score_model(_moved(model, _random_rotation(rng), rng.normal(size=3) * 100), native)
        for key in ("tm_score", "gdt_ts", "gdt_ha", "lddt", "lddt_ca", "rmsd_ca"):
            assert getattr(moved, key) == pytest.approx(getattr(base, key), abs=1e-6), key


# ---------------------------------------------------------------------------------------------- residue matching
def _renumbered(chain: Chain, numbers) -> Chain:
    out = chain.take(np.arange(len(chain)))
    out.residue_index = np.asarray(numbers)
    return out


def test_renumbered_partial_native_is_matched_by_sequence():
    """T1043 in 6vr4 numbering (1997-2144), with a deleted loop and missing termini, scores like the original."""
    native = inputs.read_chain(_native("T1043.pdb"))
    model = inputs.read_chain(_data("alphafold_testdata", "relax", "with_violations_casp14.pdb"))
    keep = np.r_[5:60, 68:140]
    partial = native.take(keep)
    pdb_numbered = _renumbered(partial, partial.residue_index + 1996)
    expected = score_model(model, partial, matching="number")
    got = score_model(model, pdb_numbered)  # auto
    assert got.match_method == "align"
    assert got.n_native == len(keep) and got.n_matched == len(keep)
    for key in ("tm_score", "gdt_ts", "gdt_ha", "lddt", "lddt_ca", "rmsd_ca"):
        assert getattr(got, key) == pytest.approx(getattr(expected, key), abs=1e-9), key
    # numbering alone would pair nothing here
    assert score_model(model, pdb_numbered, matching="number").n_matched == 0


def test_auto_matching_uses_numbers_when_consistent():
    native = inputs.read_chain(_native("T1026.pdb"))  # numbered 27-172 (target numbering)
    m = match_residues(native.aatype, native.residue_index, native.aatype, native.residue_index)
    assert m.method == "number" and len(m.model_index) == len(native)
    # a model shifted by one residue number: numbering pairs different residue types -> alignment
    shifted = match_residues(native.aatype, native.residue_index + 1, native.aatype, native.residue_index)
    assert shifted.method == "align" and (shifted.model_index == shifted.native_index).all()
    with pytest.raises(ValueError, match="unknown residue matching mode"):
        match_residues(native.aatype, native.residue_index, native.aatype, native.residue_index, "fuzzy")


def test_alignment_handles_insertions_and_substitutions():
    native = "MKTAYIAKQRQISFVKSHFSRQ"
    model = "MKTAYIAKQGGGRQISFVKAHFSRQ"  # 3-residue insertion, one substitution
    m = by_alignment(model, native)
    pairs = dict(zip(m.native_index.tolist(), m.model_index.tolist()))
    assert pairs[0] == 0 and pairs[8] == 8 and pairs[9] == 12 and pairs[len(native) - 1] == len(model) - 1
    assert len(pairs) == len(native)


def test_domain_subset_scores_only_its_residues():
    native = inputs.read_chain(_native("T1043.pdb"))
    model = inputs.read_chain(_data("alphafold_testdata", "relax", "with_violations.pdb"))
    dom = score_model(model, native, native_residues=range(1, 71))
    assert dom.n_native == 70 and dom.n_matched == 70 and len(dom.per_residue_lddt) == 70
    x, y = model.atom_positions[:70, CA], native.atom_positions[:70, CA]
    assert dom.rmsd_ca == pytest.approx(superposed_rmsd(x, y))
    assert dom.tm_score == pytest.approx(tm_gdt_search(x, y).tm_score)
