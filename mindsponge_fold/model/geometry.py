"""Rigid-body geometry on MindSpore tensors, shared by the structure module and the losses.

Representation: a rotation is a Tensor [..., 3, 3] (row-major, acting on column vectors), a translation or point a
Tensor [..., 3], a rigid a tuple ``(rot, trans)``, a quaternion [..., 4] as (w, x, y, z), and AlphaFold's QuatAffine
tensor [..., 7] is (quaternion, translation). Products are written out as broadcast multiply-and-sum over the last
axis (no batched matmul), which keeps every batch shape working and matches the reference's component formulas.
All functions are usable inside graph-mode ``construct``.

Numpy twin (data pipeline, relax, evaluation): ``mindsponge_fold.common.geometry``; parity test: tests/test_twins.py.
"""
import numpy as np
from mindspore import Tensor, ops


def _quat_to_rot_table():
    """[4, 4, 9] table: rot_flat[k] = sum_ij T[i, j, k] q_i q_j for a unit quaternion (w, x, y, z)."""
    t = np.zeros((4, 4, 9), np.float32)

    def add(i, j, k, v):
        t[i, j, k] += v

    # diagonal entries
    for k, signs in ((0, (1, 1, -1, -1)), (4, (1, -1, 1, -1)), (8, (1, -1, -1, 1))):
        for i, s in enumerate(signs):
            add(i, i, k, s)
    # off-diagonal entries: 2 (xy - wz) etc.
    for k, (a, b, c, d, s) in {1: (1, 2, 0, 3, -1), 3: (1, 2, 0, 3, 1), 2: (1, 3, 0, 2, 1), 6: (1, 3, 0, 2, -1),
                               5: (2, 3, 0, 1, -1), 7: (2, 3, 0, 1, 1)}.items():
        add(a, b, k, 2.0)
        add(c, d, k, 2.0 * s)
    return t


def _quat_multiply_table():
    """[4, 4, 4] table: (q1 * q2)_k = sum_ij T[i, j, k] q1_i q2_j (Hamilton product)."""
    t = np.zeros((4, 4, 4), np.float32)
    # w
    t[0, 0, 0], t[1, 1, 0], t[2, 2, 0], t[3, 3, 0] = 1, -1, -1, -1
    # x
    t[0, 1, 1], t[1, 0, 1], t[2, 3, 1], t[3, 2, 1] = 1, 1, 1, -1
    # y
    t[0, 2, 2], t[2, 0, 2], t[3, 1, 2], t[1, 3, 2] = 1, 1, 1, -1
    # z
    t[0, 3, 3], t[3, 0, 3], t[1, 2, 3], t[2, 1, 3] = 1, 1, 1, -1
    return t


QUAT_TO_ROT = _quat_to_rot_table()
QUAT_MULTIPLY = _quat_multiply_table()
QUAT_MULTIPLY_BY_VEC = QUAT_MULTIPLY[:, 1:, :]


def quat_to_rot(q):
    """Unit quaternion [..., 4] -> rotation [..., 3, 3]."""
    table = Tensor(QUAT_TO_ROT, q.dtype)
    flat = ops.sum(table * q[..., :, None, None] * q[..., None, :, None], (-3, -2))
    return flat.reshape(q.shape[:-1] + (3, 3))


def quat_multiply(q1, q2):
    table = Tensor(QUAT_MULTIPLY, q1.dtype)
    return ops.sum(table * q1[..., :, None, None] * q2[..., None, :, None], (-3, -2))


def quat_multiply_by_vec(q, v):
    """q [..., 4] times the pure quaternion (0, v), v [..., 3]."""
    table = Tensor(QUAT_MULTIPLY_BY_VEC, q.dtype)
    return ops.sum(table * q[..., :, None, None] * v[..., None, :, None], (-3, -2))


def normalize_quat(q):
    return q / ops.sqrt(ops.sum(q * q, -1, keepdim=True))


def rot_apply(rot, v):
    """rot [..., 3, 3] @ v [..., 3]."""
    return ops.sum(rot * v[..., None, :], -1)


def rot_invert_apply(rot, v):
    """rot^T @ v."""
    return ops.sum(rot * v[..., :, None], -2)


def rot_mul_rot(a, b):
    """a @ b for [..., 3, 3]."""
    return ops.sum(a[..., :, :, None] * b[..., None, :, :], -2)


def rigid_apply(rigid, v):
    rot, trans = rigid
    return rot_apply(rot, v) + trans


def rigid_invert_apply(rigid, v):
    rot, trans = rigid
    return rot_invert_apply(rot, v - trans)


def rigid_compose(a, b):
    """a o b: apply b first, then a."""
    return rot_mul_rot(a[0], b[0]), rot_apply(a[0], b[1]) + a[1]


def robust_normalize(v, eps=1e-8):
    return v / ops.sqrt(ops.sum(v * v, -1, keepdim=True) + eps)


def cross(a, b):
    ax, ay, az = a[..., 0], a[..., 1], a[..., 2]
    bx, by, bz = b[..., 0], b[..., 1], b[..., 2]
    return ops.stack([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], -1)


def rots_from_two_vecs(e0_unnormalized, e1_unnormalized):
    """Gram-Schmidt: x axis along e0, y axis in the (e0, e1) plane."""
    e0 = robust_normalize(e0_unnormalized)
    c = ops.sum(e1_unnormalized * e0, -1, keepdim=True)
    e1 = robust_normalize(e1_unnormalized - c * e0)
    e2 = cross(e0, e1)
    return ops.stack([e0, e1, e2], -1)          # columns are the axes


def rigids_from_3_points(point_on_neg_x_axis, origin, point_on_xy_plane):
    """Suppl. Alg. 21 rigidFrom3Points (AlphaFold's r3 convention)."""
    rot = rots_from_two_vecs(origin - point_on_neg_x_axis, point_on_xy_plane - origin)
    return rot, origin


def quat_affine_from_tensor(t, normalize=False):
    """QuatAffine tensor [..., 7] -> (quaternion, rot, trans)."""
    q, trans = t[..., :4], t[..., 4:]
    if normalize:
        q = normalize_quat(q)
    return q, quat_to_rot(q), trans


def quat_affine_pre_compose(q, rot, trans, update):
    """AlphaFold's QuatAffine.pre_compose (Suppl. Alg. 23 backbone update): update [..., 6] = (b, c, d, tx, ty, tz).

    The new quaternion q + q*(0, b, c, d) is normalised; the translation update is rotated by the OLD rotation.
    Returns (q_new, rot_new, trans_new).
    """
    q_new = normalize_quat(q + quat_multiply_by_vec(q, update[..., :3]))
    trans_new = trans + rot_apply(rot, update[..., 3:])
    return q_new, quat_to_rot(q_new), trans_new


def rigid_to_flat12(rot, trans):
    """(rot, trans) -> [..., 12]: rotation row-major then translation (the fixture's frame layout)."""
    return ops.concat([rot.reshape(rot.shape[:-2] + (9,)), trans], -1)


def rigid_from_flat12(flat):
    return flat[..., :9].reshape(flat.shape[:-1] + (3, 3)), flat[..., 9:]
