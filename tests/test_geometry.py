"""Rigid-body geometry: algebraic identities and agreement with the reference's frames and quaternions."""
import numpy as np
import pytest

from helpers import reference_path
from mindsponge_fold.common import geometry as geo


def _random_rots(rng, n):
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return geo.quat_to_rot(q), q


def _quat_close_up_to_sign(a, b, atol):
    sign = np.sign(np.sum(a * b, axis=-1, keepdims=True))
    np.testing.assert_allclose(a * sign, b, atol=atol)


def test_quat_rot_roundtrip():
    rng = np.random.default_rng(0)
    rot, q = _random_rots(rng, 50)
    np.testing.assert_allclose(rot @ np.swapaxes(rot, -1, -2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-12)
    _quat_close_up_to_sign(geo.rot_to_quat(rot), q, atol=1e-10)
    # a rotation of angle t about z is the quaternion (cos t/2, 0, 0, sin t/2)
    t = 0.7
    rz = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    _quat_close_up_to_sign(geo.rot_to_quat(rz), np.array([np.cos(t / 2), 0, 0, np.sin(t / 2)]), atol=1e-12)
    np.testing.assert_allclose(geo.quat_to_rot(np.array([np.cos(t / 2), 0, 0, np.sin(t / 2)])), rz, atol=1e-12)
    assert geo.rot_to_quat(rot.astype(np.float32)).dtype == np.float32


def test_quat_multiply_matches_rotation_product():
    rng = np.random.default_rng(1)
    r1, q1 = _random_rots(rng, 20)
    r2, q2 = _random_rots(rng, 20)
    np.testing.assert_allclose(geo.quat_to_rot(geo.quat_multiply(q1, q2)), r1 @ r2, atol=1e-12)
    v = rng.normal(size=(20, 3))
    np.testing.assert_allclose(geo.quat_multiply_by_vec(q1, v),
                               geo.quat_multiply(q1, np.concatenate([np.zeros((20, 1)), v], -1)))


def test_pre_compose_semantics():
    rng = np.random.default_rng(2)
    _, q = _random_rots(rng, 10)
    affine = np.concatenate([q, rng.normal(size=(10, 3))], -1)
    np.testing.assert_allclose(geo.quat_affine_pre_compose(affine, np.zeros((10, 6))), affine, atol=1e-12)
    update = rng.normal(size=(10, 6)) * 0.3
    new = geo.quat_affine_pre_compose(affine, update)
    np.testing.assert_allclose(np.linalg.norm(new[:, :4], axis=-1), 1.0, atol=1e-12)
    # the update is the rigid (normalise(1, b, c, d), t) applied in the local frame: T_new = T_old o T_update
    upd_quat = np.concatenate([np.ones((10, 1)), update[:, :3]], -1)
    t_update = geo.Rigid(geo.quat_to_rot(upd_quat / np.linalg.norm(upd_quat, axis=-1, keepdims=True)), update[:, 3:])
    expect = geo.Rigid.from_quat_affine(affine).compose(t_update)
    got = geo.Rigid.from_quat_affine(new)
    np.testing.assert_allclose(got.rot, expect.rot, atol=1e-12)
    np.testing.assert_allclose(got.trans, expect.trans, atol=1e-12)


def test_rigid_algebra():
    rng = np.random.default_rng(3)
    a = geo.Rigid(_random_rots(rng, 7)[0], rng.normal(size=(7, 3)))
    b = geo.Rigid(_random_rots(rng, 7)[0], rng.normal(size=(7, 3)))
    x = rng.normal(size=(7, 3))
    np.testing.assert_allclose(a.compose(b).apply(x), a.apply(b.apply(x)), atol=1e-12)
    np.testing.assert_allclose(a.invert().apply(a.apply(x)), x, atol=1e-12)
    np.testing.assert_allclose(a.invert_apply(a.apply(x)), x, atol=1e-12)
    ident = a.compose(a.invert())
    np.testing.assert_allclose(ident.rot, np.broadcast_to(np.eye(3), (7, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(ident.trans, 0, atol=1e-12)
    # flat12 is row-major rotation then translation; 4x4 and QuatAffine round-trip
    flat = a.to_flat12()
    assert flat.shape == (7, 12)
    np.testing.assert_array_equal(flat[:, 1], a.rot[:, 0, 1])
    np.testing.assert_array_equal(flat[:, 9:], a.trans)
    np.testing.assert_array_equal(geo.Rigid.from_flat12(flat).rot, a.rot)
    m = a.to_tensor4x4()
    np.testing.assert_allclose(m[:, :3, :3] @ x[..., None] + m[:, :3, 3:], a.apply(x)[..., None])
    back = geo.Rigid.from_quat_affine(a.to_quat_affine())
    np.testing.assert_allclose(back.rot, a.rot, atol=1e-10)
    # broadcasting several points per frame
    pts = rng.normal(size=(7, 5, 3))
    np.testing.assert_allclose(a[:, None].apply(pts)[:, 2], a.apply(pts[:, 2]), atol=1e-12)
    assert geo.Rigid.identity((2, 3)).rot.shape == (2, 3, 3, 3)


def test_from_3_points_algorithm21():
    rng = np.random.default_rng(4)
    x1, x2, x3 = rng.normal(size=(3, 6, 3))
    frame = geo.Rigid.from_3_points(x1, x2, x3)
    np.testing.assert_allclose(np.linalg.det(frame.rot), 1.0, atol=1e-6)
    local1, local3 = frame.invert_apply(x1), frame.invert_apply(x3)
    np.testing.assert_allclose(local1[:, 1:], 0, atol=1e-6)  # x1 on the x axis ...
    assert np.all(local1[:, 0] < 0)  # ... on the negative side
    np.testing.assert_allclose(local3[:, 2], 0, atol=1e-6)  # x3 in the xy plane, y > 0
    assert np.all(local3[:, 1] > 0)
    np.testing.assert_allclose(frame.trans, x2)


def test_make_transform_from_reference():
    rng = np.random.default_rng(5)
    n, ca, c = rng.normal(size=(3, 4, 3))
    rot, trans = geo.make_transform_from_reference(n, ca, c)
    local_c = geo.apply_inverse_rot(rot, c - trans)
    local_n = geo.apply_inverse_rot(rot, n - trans)
    np.testing.assert_allclose(local_c[:, 1:], 0, atol=1e-6)
    assert np.all(local_c[:, 0] > 0) and np.all(local_n[:, 1] > 0)
    np.testing.assert_allclose(local_n[:, 2], 0, atol=1e-6)


def test_dihedral_and_bond_angle():
    a, b, c = np.array([1.0, 0, 0]), np.zeros(3), np.array([0, 1.0, 0])
    for t in (-2.5, -0.3, 0.0, 1.0, 3.0):
        # d = a rotated by t about the b->c axis (+y, right-handed: +x goes to -z): dihedral = t
        d = np.array([np.cos(t), 1.0, -np.sin(t)])
        assert geo.dihedral_angle(a, b, c, d) == pytest.approx(t, abs=1e-12)
    assert geo.bond_angle(a, b, c) == pytest.approx(np.pi / 2)
    # anti (trans) arrangement is +-pi; IUPAC sign: clockwise from a to d seen along b->c is positive
    assert abs(geo.dihedral_angle([1, 1, 0], [0, 0, 0], [0, 0, 1], [-1, -1, 1])) == pytest.approx(np.pi)
    assert geo.dihedral_angle([1, 0, 0], [0, 0, 0], [0, 0, 1], [0, 1, 1]) == pytest.approx(np.pi / 2)


def test_backbone_frames_match_fixture():
    """The reference's backbone QuatAffine tensor and its flat-12 backbone frame describe the same rigid, and
    Algorithm 21 on (C, CA, N) rotated by diag(-1, 1, -1) reproduces it from the atom coordinates."""
    truth = np.load(reference_path("ground_truth.npz"))
    mask = truth["backbone_affine_mask"] > 0
    affine = truth["backbone_affine_tensor"][mask]
    frame12 = geo.Rigid.from_flat12(truth["rigidgroups_gt_frames"][mask, 0])
    from_quat = geo.Rigid.from_quat_affine(affine)
    np.testing.assert_allclose(from_quat.rot, frame12.rot, atol=1e-5)
    np.testing.assert_allclose(from_quat.trans, frame12.trans, atol=1e-5)
    _quat_close_up_to_sign(geo.rot_to_quat(frame12.rot), affine[:, :4], atol=1e-5)
    pos = truth["all_atom_positions"][mask]
    built = geo.Rigid.from_3_points(pos[:, 2], pos[:, 1], pos[:, 0]).compose_rot(np.diag([-1.0, 1.0, -1.0]))
    np.testing.assert_allclose(built.rot, frame12.rot, atol=1e-5)
    rot, trans = geo.make_transform_from_reference(pos[:, 0], pos[:, 1], pos[:, 2])
    np.testing.assert_allclose(rot, frame12.rot, atol=1e-5)
    np.testing.assert_allclose(trans, frame12.trans, atol=1e-6)


def test_traj_frames_match_fixture_positions():
    """structure_module/traj (QuatAffine) places the predicted backbone: CA = translation, and the N/C atoms of
    the final prediction sit at the literature positions of the residue's backbone group."""
    from mindsponge_fold.common import residue_constants as rc
    out = np.load(reference_path("outputs_recycle1.npz"))
    aatype = np.load(reference_path("processed_features.npz"))["aatype"][1]
    frames = geo.Rigid.from_quat_affine(out["structure_module/final_affines"], normalize=True)
    atoms = out["structure_module/final_atom14_positions"]
    np.testing.assert_allclose(frames.trans, atoms[:, 1], atol=1e-4)
    lit = rc.restype_atom14_rigid_group_positions[aatype]
    np.testing.assert_allclose(frames.apply(lit[:, 0]), atoms[:, 0], atol=1e-3)
    np.testing.assert_allclose(frames.apply(lit[:, 2]), atoms[:, 2], atol=1e-3)
