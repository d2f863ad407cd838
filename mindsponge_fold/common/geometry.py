"""Numpy rigid-body geometry: rotations, quaternions, rigid frames (AlphaFold 2 supplement section 1.8).

Conventions (those of AlphaFold's ``r3`` / ``quat_affine`` modules, so arrays can be exchanged with the reference):
* a rotation is a (..., 3, 3) matrix acting on column vectors: ``x_global = R @ x_local + t``;
* a ``Rigid`` is (rot (..., 3, 3), trans (..., 3)) and maps local coordinates to global ones (T = (R, t));
* flat-12 layout: the nine rotation entries row-major (xx, xy, xz, yx, ..., zz) then the translation;
* quaternions are (w, x, y, z); a QuatAffine tensor is (..., 7) = quaternion then translation.

MindSpore twin (the same algebra on Tensors, for the graph): ``mindsponge_fold.model.geometry``; parity test:
tests/test_twins.py.
"""
import dataclasses

import numpy as np

_EPS = 1e-8


def _as_float(x):
    x = np.asarray(x)
    return x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float32)


def robust_norm(v, axis=-1, keepdims=False, epsilon=_EPS):
    """sqrt(|v|^2 + epsilon): never zero, so division by it is safe (AlphaFold's vecs_robust_norm)."""
    v = _as_float(v)
    return np.sqrt(np.sum(v * v, axis=axis, keepdims=keepdims) + epsilon).astype(v.dtype)


def robust_normalize(v, epsilon=_EPS):
    """v / robust_norm(v) along the last axis."""
    v = _as_float(v)
    return v / robust_norm(v, keepdims=True, epsilon=epsilon)


def rots_from_two_vecs(e0_unnormalized, e1_unnormalized):
    """Gram-Schmidt rotation whose x axis is along e0 and whose xy plane contains e1 (columns e0, e1, e0 x e1)."""
    e0 = robust_normalize(e0_unnormalized)
    e1 = _as_float(e1_unnormalized)
    e1 = robust_normalize(e1 - np.sum(e1 * e0, axis=-1, keepdims=True) * e0)
    e2 = np.cross(e0, e1)
    return np.stack([e0, e1, e2], axis=-1)


def apply_rot(rot, vec):
    """R @ v with broadcasting over leading dimensions."""
    return np.einsum("...ij,...j->...i", rot, vec)


def apply_inverse_rot(rot, vec):
    """R^T @ v with broadcasting over leading dimensions."""
    return np.einsum("...ji,...j->...i", rot, vec)


@dataclasses.dataclass(frozen=True)
class Rigid:
    """Rigid transform x -> rot @ x + trans, batched over leading dimensions (rot (..., 3, 3), trans (..., 3))."""
    rot: np.ndarray
    trans: np.ndarray

    @classmethod
    def identity(cls, shape=(), dtype=np.float32):
        rot = np.broadcast_to(np.eye(3, dtype=dtype), tuple(shape) + (3, 3)).copy()
        return cls(rot, np.zeros(tuple(shape) + (3,), dtype=dtype))

    @classmethod
    def from_3_points(cls, point_on_neg_x_axis, origin, point_on_xy_plane):
        """Algorithm 21 (rigidFrom3Points): origin at x2, x axis along x2 - x1, x3 in the xy plane (y > 0)."""
        origin = _as_float(origin)
        rot = rots_from_two_vecs(origin - point_on_neg_x_axis, _as_float(point_on_xy_plane) - origin)
        return cls(rot, origin)

    @classmethod
    def from_flat12(cls, flat):
        flat = _as_float(flat)
        return cls(flat[..., :9].reshape(flat.shape[:-1] + (3, 3)), flat[..., 9:])

    @classmethod
    def from_tensor4x4(cls, mat):
        mat = _as_float(mat)
        return cls(mat[..., :3, :3], mat[..., :3, 3])

    @classmethod
    def from_quat_affine(cls, affine, normalize=False):
        """From a (..., 7) QuatAffine tensor; the rotation is quat_to_rot of the (optionally normalised) quaternion."""
        affine = _as_float(affine)
        quat = affine[..., :4]
        if normalize:
            quat = quat / np.linalg.norm(quat, axis=-1, keepdims=True)
        return cls(quat_to_rot(quat), affine[..., 4:])

    def to_flat12(self):
        return np.concatenate([self.rot.reshape(self.rot.shape[:-2] + (9,)), self.trans], axis=-1)

    def to_tensor4x4(self):
        shape = self.trans.shape[:-1]
        out = np.zeros(shape + (4, 4), dtype=self.trans.dtype)
        out[..., :3, :3], out[..., :3, 3], out[..., 3, 3] = self.rot, self.trans, 1
        return out

    def to_quat_affine(self):
        """(..., 7) QuatAffine tensor: rot_to_quat(rot) (unit, sign arbitrary) then translation."""
        return np.concatenate([rot_to_quat(self.rot), self.trans], axis=-1)

    def apply(self, points):
        """Global coordinates of local ``points`` (broadcast: add axes to the rigid, e.g. rigid[..., None])."""
        return apply_rot(self.rot, points) + self.trans

    def invert_apply(self, points):
        """Local coordinates of global ``points``: R^T (x - t)."""
        return apply_inverse_rot(self.rot, np.asarray(points) - self.trans)

    def invert(self):
        inv_rot = np.swapaxes(self.rot, -1, -2)
        return Rigid(inv_rot, -apply_rot(inv_rot, self.trans))

    def compose(self, other: "Rigid"):
        """self o other: apply ``other`` first, then ``self``."""
        return Rigid(self.rot @ other.rot, self.trans + apply_rot(self.rot, other.trans))

    def compose_rot(self, rot):
        """self o (rot, 0): rotate in the local frame, keep the origin."""
        return Rigid(self.rot @ rot, self.trans)

    def __getitem__(self, index):
        """Index the batch dimensions, e.g. ``rigid[:, None]`` to broadcast against several points per frame."""
        index = index if isinstance(index, tuple) else (index,)
        return Rigid(self.rot[index + (slice(None), slice(None))], self.trans[index + (slice(None),)])

    @property
    def shape(self):
        return self.trans.shape[:-1]


def make_transform_from_reference(n_xyz, ca_xyz, c_xyz):
    """Backbone (rot, trans) mapping the reference residue (CA at origin, C on +x, N in the xy plane with y > 0)
    onto the given N, CA, C coordinates (AlphaFold's quat_affine.make_transform_from_reference)."""
    frame = Rigid.from_3_points(point_on_neg_x_axis=2 * np.asarray(ca_xyz) - np.asarray(c_xyz), origin=ca_xyz,
                                point_on_xy_plane=n_xyz)
    return frame.rot, frame.trans


# --------------------------------------------------------------------------------------------------------------
# Quaternions (w, x, y, z)
# --------------------------------------------------------------------------------------------------------------
def quat_to_rot(quat):
    """Rotation matrix of a quaternion (..., 4). The quaternion is used as given (AlphaFold normalises it before)."""
    q = _as_float(quat)
    w, x, y, z = (q[..., i] for i in range(4))
    rows = [
        [w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def rot_to_quat(rot):
    """Unit quaternion (..., 4) of a rotation (..., 3, 3): leading eigenvector of the symmetric 4x4 matrix
    K(R) (Bar-Itzhack's method, as AlphaFold's quat_affine.rot_to_quat). q and -q are the same rotation; the
    reference returns whichever sign its eigensolver gives, here the sign is fixed to w >= 0."""
    r = _as_float(rot)
    xx, xy, xz = r[..., 0, 0], r[..., 0, 1], r[..., 0, 2]
    yx, yy, yz = r[..., 1, 0], r[..., 1, 1], r[..., 1, 2]
    zx, zy, zz = r[..., 2, 0], r[..., 2, 1], r[..., 2, 2]
    k = np.stack([
        np.stack([xx + yy + zz, zy - yz, xz - zx, yx - xy], axis=-1),
        np.stack([zy - yz, xx - yy - zz, xy + yx, xz + zx], axis=-1),
        np.stack([xz - zx, xy + yx, yy - xx - zz, yz + zy], axis=-1),
        np.stack([yx - xy, xz + zx, yz + zy, zz - xx - yy], axis=-1),
    ], axis=-2) / 3.0
    _, vecs = np.linalg.eigh(k)
    quat = vecs[..., -1]
    return np.where(quat[..., :1] < 0, -quat, quat).astype(r.dtype)


def quat_multiply(q1, q2):
    """Hamilton product q1 * q2 of (..., 4) quaternions."""
    a1, b1, c1, d1 = (q1[..., i] for i in range(4))
    a2, b2, c2, d2 = (q2[..., i] for i in range(4))
    return np.stack([a1 * a2 - b1 * b2 - c1 * c2 - d1 * d2,
                     a1 * b2 + b1 * a2 + c1 * d2 - d1 * c2,
                     a1 * c2 - b1 * d2 + c1 * a2 + d1 * b2,
                     a1 * d2 + b1 * c2 - c1 * b2 + d1 * a2], axis=-1)


def quat_multiply_by_vec(quat, vec):
    """q * (0, v) for a pure-vector quaternion v (..., 3)."""
    vec = np.asarray(vec)
    return quat_multiply(quat, np.concatenate([np.zeros_like(vec[..., :1]), vec], axis=-1))


def quat_affine_pre_compose(affine, update):
    """Algorithm 23 backbone update in QuatAffine form: ``affine`` (..., 7), ``update`` (..., 6) = (b, c, d, t).

    New quaternion = q + q * (0, b, c, d) (not normalised before use, as in AlphaFold), then normalised for the
    output; new translation = t_old + R(q) @ t_update. Returns the new (..., 7) tensor.
    """
    affine, update = _as_float(affine), _as_float(update)
    quat, trans = affine[..., :4], affine[..., 4:]
    new_quat = quat + quat_multiply_by_vec(quat, update[..., :3])
    new_trans = trans + apply_rot(quat_to_rot(quat), update[..., 3:])
    new_quat = new_quat / np.linalg.norm(new_quat, axis=-1, keepdims=True)
    return np.concatenate([new_quat, new_trans], axis=-1)


# --------------------------------------------------------------------------------------------------------------
# Angles
# --------------------------------------------------------------------------------------------------------------
def dihedral_angle(a, b, c, d):
    """Dihedral angle (radians, -pi..pi, IUPAC sign) of the four points a-b-c-d about the b-c bond."""
    a, b, c, d = (np.asarray(p, dtype=np.float64) for p in (a, b, c, d))
    b0, b1, b2 = a - b, c - b, d - c
    b1n = b1 / np.linalg.norm(b1, axis=-1, keepdims=True)
    v = b0 - np.sum(b0 * b1n, axis=-1, keepdims=True) * b1n
    w = b2 - np.sum(b2 * b1n, axis=-1, keepdims=True) * b1n
    x = np.sum(v * w, axis=-1)
    y = np.sum(np.cross(b1n, v) * w, axis=-1)
    return np.arctan2(y, x)


def bond_angle(a, b, c):
    """Angle a-b-c at b (radians)."""
    a, b, c = (np.asarray(p, dtype=np.float64) for p in (a, b, c))
    u, v = a - b, c - b
    cos = np.sum(u * v, axis=-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return np.arccos(np.clip(cos, -1.0, 1.0))
