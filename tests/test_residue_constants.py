"""Residue constants: internal consistency, agreement with the stereochemistry, and with the 2crb fixture."""
import numpy as np
import pytest

from helpers import reference_path
from mindsponge_fold.common import residue_constants as rc


def test_alphabets():
    assert rc.restype_num == 20 and len(rc.restypes_with_x) == 21 and len(rc.restypes_with_x_and_gap) == 22
    assert rc.unk_restype_index == 20 and rc.resnames[20] == "UNK"
    # restypes are the one-letter codes of the alphabetically sorted three-letter names
    assert [rc.restype_1to3[r] for r in rc.restypes] == sorted(rc.restype_3to1)
    assert all(rc.restype_3to1[rc.restype_1to3[r]] == r for r in rc.restypes)
    assert rc.atom_type_num == 37 and rc.atom_types[:5] == ["N", "CA", "C", "CB", "O"] and rc.atom_types[-1] == "OXT"
    assert len(set(rc.atom_types)) == 37


def test_hhblits_mapping():
    # every standard letter keeps its identity through HHblits ids -> our ids
    for letter in rc.restypes:
        assert rc.MAP_HHBLITS_AATYPE_TO_OUR_AATYPE[rc.HHBLITS_AA_TO_ID[letter]] == rc.restype_order[letter]
    assert rc.MAP_HHBLITS_AATYPE_TO_OUR_AATYPE[20] == 20 and rc.MAP_HHBLITS_AATYPE_TO_OUR_AATYPE[21] == 21
    assert rc.HHBLITS_AA_TO_ID["B"] == rc.HHBLITS_AA_TO_ID["D"] and rc.HHBLITS_AA_TO_ID["U"] == rc.HHBLITS_AA_TO_ID["C"]
    assert rc.HHBLITS_AA_TO_ID["O"] == 20 and rc.HHBLITS_AA_TO_ID["-"] == 21
    assert sorted(set(rc.MAP_HHBLITS_AATYPE_TO_OUR_AATYPE)) == list(range(22))


def test_sequence_to_onehot():
    one_hot = rc.sequence_to_onehot("ARX", rc.restype_order_with_x)
    assert one_hot.shape == (3, 21) and one_hot.dtype == np.int32
    assert list(one_hot.argmax(-1)) == [0, 1, 20] and one_hot.sum() == 3
    assert rc.sequence_to_onehot("AB", rc.restype_order_with_x, map_unknown_to_x=True).argmax(-1)[1] == 20
    with pytest.raises(ValueError):
        rc.sequence_to_onehot("AB", rc.restype_order_with_x)
    with pytest.raises(ValueError):
        rc.sequence_to_onehot("A1", rc.restype_order_with_x, map_unknown_to_x=True)
    with pytest.raises(ValueError):
        rc.sequence_to_onehot("A", {"A": 0, "R": 2})


def test_atom_tables_shapes_and_roundtrip():
    assert rc.restype_atom14_to_atom37.shape == (21, 14) and rc.restype_atom37_to_atom14.shape == (21, 37)
    assert rc.restype_atom14_mask.shape == (21, 14) and rc.restype_atom37_mask.shape == (21, 37)
    assert rc.restype_atom14_mask[20].sum() == 0 and rc.restype_atom37_mask[20].sum() == 0
    np.testing.assert_array_equal(rc.restype_atom14_mask.sum(1), rc.restype_atom37_mask.sum(1))
    for rt in range(20):
        present14 = np.nonzero(rc.restype_atom14_mask[rt])[0]
        idx37 = rc.restype_atom14_to_atom37[rt, present14]
        np.testing.assert_array_equal(rc.restype_atom37_to_atom14[rt, idx37], present14)
        assert rc.restype_atom37_mask[rt, idx37].all()
        # the atoms with literature positions are exactly the atom14 atoms
        names = {row[0] for row in rc.rigid_group_atom_positions[rc.resnames[rt]]}
        assert names == set(rc.residue_atoms[rc.resnames[rt]])
    assert rc.restype_atom37_mask[:, rc.atom_order["OXT"]].sum() == 0
    assert rc.restype_atom14_mask[rc.restype_order["W"]].sum() == 14  # TRP fills all 14 slots
    assert rc.restype_atom14_mask[rc.restype_order["G"]].sum() == 4


def test_chi_tables():
    assert np.shape(rc.chi_angles_mask) == (20, 4) and np.shape(rc.chi_pi_periodic) == (21, 4)
    assert rc.chi_angles_atom_indices.shape == (20, 4, 4) and rc.chi_atom_indices_with_unk.shape == (21, 4, 4)
    counts = {rc.restypes[i]: int(sum(m)) for i, m in enumerate(rc.chi_angles_mask)}
    assert counts["R"] == 4 and counts["K"] == 4 and counts["A"] == 0 and counts["G"] == 0 and counts["V"] == 1
    periodic = np.asarray(rc.chi_pi_periodic)
    assert periodic.sum() == 4 and np.all(periodic[:20] <= np.asarray(rc.chi_angles_mask))
    # consecutive chis share three atoms (each chi's axis is the next bond along the side chain)
    for chis in rc.chi_angles_atoms.values():
        for a, b in zip(chis, chis[1:]):
            assert a[1:] == b[:3]
    assert rc.chi_groups_for_atom[("ARG", "CD")] == [(1, 3), (2, 2), (3, 1)]


def test_rigid_group_positions_match_literature_bonds():
    """Atoms of the same rigid group sit at literature bond lengths from each other (within 0.03 A)."""
    bonds, virtual, _ = rc.load_stereo_chemical_props()
    checked = 0
    for res, rows in rc.rigid_group_atom_positions.items():
        where = {name: (group, np.asarray(pos)) for name, group, pos in rows}
        for bond in bonds[res] + virtual[res]:
            (g1, p1), (g2, p2) = where[bond.atom1_name], where[bond.atom2_name]
            if g1 == g2:
                assert abs(np.linalg.norm(p1 - p2) - bond.length) < max(0.03, 3 * bond.stddev), (res, bond)
                checked += 1
    assert checked > 100


def test_default_frames_are_rigid_and_place_chi_atoms():
    frames = rc.restype_rigid_group_default_frame
    assert frames.shape == (21, 8, 4, 4)
    defined = rc.restype_rigidgroup_mask[:20].copy()
    defined[:, 1:3] = 1  # pre-omega and phi frames are defined for every residue type
    assert np.all(frames[:20][defined == 0] == 0) and np.all(frames[20] == 0)
    rot = frames[:20][defined > 0][:, :3, :3].astype(np.float64)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-6)
    np.testing.assert_array_equal(frames[:20][defined > 0][:, 3], np.broadcast_to([0, 0, 0, 1], (len(rot), 4)))
    # psi frame origin is C; chi1 frame origin is the chi1 axis end (CB->CG atom = 3rd chi atom)
    for rt, res in enumerate(rc.resnames[:20]):
        pos = {n: np.asarray(p) for n, g, p in rc.rigid_group_atom_positions[res] if g == 0}
        np.testing.assert_allclose(frames[rt, 3, :3, 3], pos["C"], atol=1e-6)
        if rc.chi_angles_atoms[res]:
            np.testing.assert_allclose(frames[rt, 4, :3, 3], pos[rc.chi_angles_atoms[res][0][2]], atol=1e-6)
            # the chi1 frame's x axis is the CA->CB bond direction
            axis = pos["CB"] - pos["CA"]
            np.testing.assert_allclose(frames[rt, 4, :3, 0], axis / np.linalg.norm(axis), atol=1e-6)


def test_dists_bounds():
    bounds = rc.make_atom14_dists_bounds(overlap_tolerance=1.5, bond_length_tolerance_factor=15)
    lower, upper, std = bounds["lower_bound"], bounds["upper_bound"], bounds["stddev"]
    assert lower.shape == upper.shape == std.shape == (21, 14, 14)
    np.testing.assert_array_equal(lower, np.swapaxes(lower, 1, 2))
    mask2 = rc.restype_atom14_mask[:, :, None] * rc.restype_atom14_mask[:, None, :] * (1 - np.eye(14))
    assert np.all(upper[mask2 > 0] > lower[mask2 > 0]) and np.all(upper[mask2 == 0] == 0)
    ala, ncol = rc.restype_order["A"], rc.restype_name_to_atom14_names["ALA"]
    n, ca, c, cb = (ncol.index(x) for x in ("N", "CA", "C", "CB"))
    assert lower[ala, n, ca] == pytest.approx(1.459 - 15 * 0.020, abs=1e-5)  # bonded
    assert std[ala, n, ca] == pytest.approx(0.020)
    assert lower[ala, ca, n] == lower[ala, n, ca]
    # N-C spans the N-CA-C angle: law of cosines of the literature values
    exp = np.sqrt(1.459 ** 2 + 1.525 ** 2 - 2 * 1.459 * 1.525 * np.cos(np.deg2rad(111.0)))
    assert (upper[ala, n, c] + lower[ala, n, c]) / 2 == pytest.approx(exp, abs=1e-5)
    o = ncol.index("O")
    assert lower[ala, n, o] == pytest.approx(1.55 + 1.52 - 1.5) and upper[ala, n, o] == pytest.approx(1e10)
    assert std[ala, cb, o] == 0
    tight = rc.make_atom14_dists_bounds(overlap_tolerance=0.0, bond_length_tolerance_factor=1)
    assert tight["lower_bound"][ala, n, o] == pytest.approx(3.07)


def test_swap_tables():
    swap = rc.restype_atom14_swap_index
    np.testing.assert_array_equal(np.take_along_axis(swap, swap, axis=1), np.tile(np.arange(14), (21, 1)))
    assert rc.restype_atom14_is_ambiguous.sum() == 12
    np.testing.assert_array_equal(rc.restype_atom14_is_ambiguous > 0, swap != np.arange(14))
    np.testing.assert_array_equal(rc.RENAMING_MATRICES.sum(1), np.ones((21, 14)))
    x = np.random.default_rng(0).normal(size=(14, 3))
    tyr = rc.restype_order["Y"]
    np.testing.assert_allclose(np.einsum("ic,ij->jc", x, rc.RENAMING_MATRICES[tyr]), x[swap[tyr]])
    assert rc.restype_rigidgroup_is_ambiguous.sum() == 4
    assert rc.restype_rigidgroup_is_ambiguous[rc.restype_order["E"], 6] == 1


def test_pdb_chain_ids():
    assert rc.PDB_MAX_CHAINS == 62 and rc.PDB_CHAIN_IDS[0] == "A" and len(set(rc.PDB_CHAIN_IDS)) == 62


def test_tables_match_fixture():
    """The pipeline's make_atom14_masks output (processed_features) equals our per-restype tables gathered by aatype."""
    feats = np.load(reference_path("processed_features.npz"))
    truth = np.load(reference_path("ground_truth.npz"))
    aatype = feats["aatype"][0]
    np.testing.assert_array_equal(rc.restype_atom14_mask[aatype], feats["atom14_atom_exists"][0])
    np.testing.assert_array_equal(rc.restype_atom14_to_atom37[aatype], feats["residx_atom14_to_atom37"][0])
    np.testing.assert_array_equal(rc.restype_atom37_to_atom14[aatype], feats["residx_atom37_to_atom14"][0])
    np.testing.assert_array_equal(rc.restype_atom37_mask[aatype], feats["atom37_atom_exists"][0])
    np.testing.assert_array_equal(rc.restype_atom14_is_ambiguous[aatype], truth["atom14_atom_is_ambiguous"])
    np.testing.assert_array_equal(rc.restype_rigidgroup_mask[aatype], truth["rigidgroups_group_exists"])
    np.testing.assert_array_equal(rc.restype_rigidgroup_is_ambiguous[aatype], truth["rigidgroups_group_is_ambiguous"])
    # every resolved ground-truth atom is an atom the residue type has
    assert np.all(truth["all_atom_mask"] <= rc.restype_atom37_mask[aatype])
