"""MindSpore geometry vs textbook numpy formulas."""
import mindspore as ms
import numpy as np
from mindspore import Tensor

from mindsponge_fold.model import geometry as g

ms.set_device("CPU")


def np_quat_to_rot(q):
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def np_hamilton(a, b):
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def test_quaternions_and_rigids():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((5, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    q2 = rng.standard_normal((5, 4))
    v = rng.standard_normal((5, 3))
    rot = g.quat_to_rot(Tensor(q, ms.float32)).asnumpy()
    ref = np.stack([np_quat_to_rot(x) for x in q])
    np.testing.assert_allclose(rot, ref, atol=1e-6)
    np.testing.assert_allclose(g.quat_multiply(Tensor(q, ms.float32), Tensor(q2, ms.float32)).asnumpy(),
                               np.stack([np_hamilton(a, b) for a, b in zip(q, q2)]), atol=1e-5)
    qv = g.quat_multiply_by_vec(Tensor(q, ms.float32), Tensor(v, ms.float32)).asnumpy()
    np.testing.assert_allclose(qv, np.stack([np_hamilton(a, np.r_[0, b]) for a, b in zip(q, v)]), atol=1e-5)
    # rigid algebra: invert o apply = identity; compose == sequential application
    t = Tensor(rng.standard_normal((5, 3)), ms.float32)
    R = Tensor(rot)
    x = Tensor(rng.standard_normal((5, 3)), ms.float32)
    np.testing.assert_allclose(g.rigid_invert_apply((R, t), g.rigid_apply((R, t), x)).asnumpy(), x.asnumpy(), atol=1e-5)
    comp = g.rigid_compose((R, t), (R, t))
    np.testing.assert_allclose(g.rigid_apply(comp, x).asnumpy(),
                               g.rigid_apply((R, t), g.rigid_apply((R, t), x)).asnumpy(), atol=1e-5)
    # pre_compose with a zero update is the identity; with a pure translation it rotates by the old rotation
    upd = np.zeros((5, 6), np.float32)
    upd[:, 3:] = v
    qn, rn, tn = g.quat_affine_pre_compose(Tensor(q, ms.float32), R, t, Tensor(upd))
    np.testing.assert_allclose(qn.asnumpy(), q, atol=1e-6)
    np.testing.assert_allclose(tn.asnumpy(), t.asnumpy() + np.einsum("nij,nj->ni", ref, v), atol=1e-5)
    # Gram-Schmidt frames are proper rotations whose x axis points from the first point to the origin
    a, o, c = (Tensor(rng.standard_normal((5, 3)), ms.float32) for _ in range(3))
    fr, ft = g.rigids_from_3_points(a, o, c)
    fr = fr.asnumpy()
    np.testing.assert_allclose(np.einsum("nji,njk->nik", fr, fr), np.broadcast_to(np.eye(3), (5, 3, 3)), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(fr), 1.0, atol=1e-5)
    ex = (o.asnumpy() - a.asnumpy())
    np.testing.assert_allclose(fr[:, :, 0], ex / np.linalg.norm(ex, axis=-1, keepdims=True), atol=1e-5)
    flat = g.rigid_to_flat12(Tensor(fr), ft)
    r2, t2 = g.rigid_from_flat12(flat)
    np.testing.assert_array_equal(r2.asnumpy(), fr)
