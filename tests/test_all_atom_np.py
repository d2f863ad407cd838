"""numpy all_atom: ground-truth targets equal the reference's ground_truth.npz; Algorithm 24 reproduces the
reference structure module's side-chain frames and atoms."""
import numpy as np
import pytest

from helpers import reference_path
from mindsponge_fold.common import all_atom, geometry as geo, residue_constants as rc

EXACT = ["all_atom_mask", "atom14_gt_exists", "atom14_alt_gt_exists", "atom14_atom_is_ambiguous",
         "rigidgroups_gt_exists", "rigidgroups_group_exists", "rigidgroups_group_is_ambiguous", "torsion_angles_mask",
         "chi_mask", "backbone_affine_mask", "pseudo_beta_mask"]
POSITIONS = ["all_atom_positions", "atom14_gt_positions", "atom14_alt_gt_positions", "rigidgroups_gt_frames",
             "rigidgroups_alt_gt_frames", "pseudo_beta"]


@pytest.fixture(scope="module")
def truth_and_ours():
    raw = np.load(reference_path("raw_features.npz"))
    truth = dict(np.load(reference_path("ground_truth.npz")))
    aatype = raw["aatype"].argmax(-1)  # one-hot in restype_order_with_x
    ours = all_atom.make_ground_truth(aatype, raw["all_atom_positions"], raw["all_atom_mask"],
                                      resolution=raw["resolution"])
    return truth, ours, aatype


def test_ground_truth_keys_shapes_dtypes(truth_and_ours):
    truth, ours, _ = truth_and_ours
    assert set(ours) == set(truth)
    for key, ref in truth.items():
        assert ours[key].shape == ref.shape and ours[key].dtype == ref.dtype, key


def test_ground_truth_masks_exact(truth_and_ours):
    truth, ours, _ = truth_and_ours
    for key in EXACT:
        np.testing.assert_array_equal(ours[key], truth[key], err_msg=key)
    assert ours["resolution"] == truth["resolution"]


def test_ground_truth_positions_and_frames(truth_and_ours):
    truth, ours, _ = truth_and_ours
    for key in POSITIONS:  # everywhere, including the degenerate frames of absent groups
        np.testing.assert_allclose(ours[key], truth[key], atol=1e-4, rtol=0, err_msg=key)


def test_ground_truth_torsions(truth_and_ours):
    truth, ours, _ = truth_and_ours
    mask = truth["torsion_angles_mask"][..., None] > 0
    for key in ("torsion_angles_sin_cos", "alt_torsion_angles_sin_cos"):
        np.testing.assert_allclose(np.where(mask, ours[key], 0), np.where(mask, truth[key], 0), atol=1e-4, err_msg=key)
    chi_mask = truth["chi_mask"] > 0
    diff = np.angle(np.exp(1j * (ours["chi_angles"] - truth["chi_angles"])))
    assert np.abs(diff[chi_mask]).max() < 1e-4
    # the alt torsions differ from the true ones exactly on the pi-periodic chis
    flipped = np.any(ours["alt_torsion_angles_sin_cos"] != ours["torsion_angles_sin_cos"], axis=-1)
    assert flipped.sum() > 0 and np.all(flipped[:, :3] == 0)


def test_ground_truth_backbone_affine(truth_and_ours):
    truth, ours, _ = truth_and_ours
    mask = truth["backbone_affine_mask"] > 0
    ref, got = truth["backbone_affine_tensor"][mask], ours["backbone_affine_tensor"][mask]
    sign = np.sign(np.sum(ref[:, :4] * got[:, :4], axis=-1, keepdims=True))  # q and -q: same rotation
    np.testing.assert_allclose(got[:, :4] * sign, ref[:, :4], atol=1e-4)
    np.testing.assert_allclose(got[:, 4:], ref[:, 4:], atol=1e-4)
    assert np.all(ours["backbone_affine_tensor"][:, 0] >= 0)


def test_torsions_agree_with_dihedrals(truth_and_ours):
    """phi and chi1 from the frame construction equal the textbook dihedrals of the same atoms."""
    _, ours, aatype = truth_and_ours
    pos = ours["all_atom_positions"]
    n, ca, c, cb = (rc.atom_order[a] for a in ("N", "CA", "C", "CB"))
    phi = geo.dihedral_angle(pos[:-1, c], pos[1:, n], pos[1:, ca], pos[1:, c])
    sc = ours["torsion_angles_sin_cos"][1:, 1].astype(np.float64)
    ok = ours["torsion_angles_mask"][1:, 1] > 0
    np.testing.assert_allclose(sc[ok], np.stack([np.sin(phi), np.cos(phi)], -1)[ok], atol=1e-5)
    chi_atom = rc.chi_atom_indices_with_unk[aatype][:, 0, 3]
    chi1 = geo.dihedral_angle(pos[:, n], pos[:, ca], pos[:, cb], pos[np.arange(len(aatype)), chi_atom])
    ok = ours["chi_mask"][:, 0] > 0
    assert ok.sum() > 50
    np.testing.assert_allclose(ours["chi_angles"][ok, 0], chi1[ok], atol=1e-5)


def test_make_atom14_masks_and_conversions():
    feats = np.load(reference_path("processed_features.npz"))
    aatype = feats["aatype"][0]
    masks = all_atom.make_atom14_masks(aatype)
    for key, value in masks.items():
        np.testing.assert_array_equal(value, feats[key][0], err_msg=key)
    rng = np.random.default_rng(0)
    data37 = rng.normal(size=(len(aatype), 37, 3)).astype(np.float32) * masks["atom37_atom_exists"][..., None]
    back = all_atom.atom14_to_atom37(aatype, all_atom.atom37_to_atom14(aatype, data37))
    np.testing.assert_array_equal(back, data37)
    # unknown / gap types have no atoms
    assert all_atom.make_atom14_masks(np.array([20, 21]))["atom14_atom_exists"].sum() == 0


def test_get_alt_atom14_swaps_partners():
    aatype = np.array([rc.restype_order["D"], rc.restype_order["A"]])
    pos = np.arange(2 * 14 * 3, dtype=np.float32).reshape(2, 14, 3)
    mask = np.ones((2, 14), np.float32)
    mask[0, 6] = 0  # OD1 missing
    alt_pos, alt_mask = all_atom.get_alt_atom14(aatype, pos, mask)
    od1, od2 = rc.restype_name_to_atom14_names["ASP"].index("OD1"), rc.restype_name_to_atom14_names["ASP"].index("OD2")
    np.testing.assert_array_equal(alt_pos[0, od1], pos[0, od2])
    np.testing.assert_array_equal(alt_pos[0, od2], pos[0, od1])
    assert alt_mask[0, od2] == 0 and alt_mask[0, od1] == 1
    np.testing.assert_array_equal(alt_pos[1], pos[1])


def test_placeholder_for_undefined():
    raw = np.load(reference_path("raw_features.npz"))
    aatype = raw["aatype"].argmax(-1)
    out = all_atom.atom37_to_torsion_angles(aatype, raw["all_atom_positions"], raw["all_atom_mask"],
                                            placeholder_for_undefined=True)
    undefined = out["torsion_angles_mask"] == 0
    assert undefined.sum() > 0
    np.testing.assert_array_equal(out["torsion_angles_sin_cos"][undefined], np.array([[1.0, 0.0]] * undefined.sum()))


@pytest.mark.parametrize("source, key_prefix", [("outputs_recycle1.npz", "structure_module/"),
                                                ("losses_near_native.npz", "input/")])
def test_algorithm24_matches_reference(source, key_prefix):
    """torsion_angles_to_frames + literature positions reproduce the reference structure module's per-layer
    side-chain frames and atom14 positions from its backbone frames and torsions."""
    out = np.load(reference_path(source))
    aatype = np.load(reference_path("processed_features.npz"))["aatype"][1]
    for layer in (0, 7):
        backbone = geo.Rigid.from_quat_affine(out[key_prefix + "traj"][layer], normalize=True)
        frames = all_atom.torsion_angles_to_frames(aatype, backbone,
                                                   out[key_prefix + "sidechains/angles_sin_cos"][layer])
        np.testing.assert_allclose(frames.to_flat12(), out[key_prefix + "sidechains/frames"][layer], atol=1e-4)
        atoms = all_atom.frames_and_literature_positions_to_atom14_pos(aatype, frames)
        np.testing.assert_allclose(atoms, out[key_prefix + "sidechains/atom_pos"][layer], atol=1e-4)
