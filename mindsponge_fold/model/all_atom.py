"""All-atom geometry on MindSpore tensors: torsion angles -> rigid-group frames -> atom14 -> atom37.

Suppl. Alg. 24 (computeAllAtomCoordinates) with Alg. 25 (makeRotX), built on :mod:`mindsponge_fold.model.geometry`
(rigids are ``(rot [..., 3, 3], trans [..., 3])`` tuples) and the residue tables of
:mod:`mindsponge_fold.common.residue_constants`. Everything is float32 and usable inside graph-mode ``construct``.
Residue-type lookups are one-hot products with constant tables, so they are exact and differentiable w.r.t. the
frames.

Numpy twin (training targets, checks): ``mindsponge_fold.common.all_atom``; parity test: tests/test_twins.py.
"""
import mindspore as ms
import numpy as np
from mindspore import Tensor, ops

from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.model import geometry as g
from mindsponge_fold.model import kernels

NUM_RESTYPES = 21  # 20 amino acids + UNK (the tables' first axis)

# Constant tables, flattened over their per-residue axes so one matmul with a one-hot aatype gathers them.
_DEFAULT_FRAMES = rc.restype_rigid_group_default_frame.astype(np.float32)          # [21, 8, 4, 4]
_ATOM14_GROUP = rc.restype_atom14_to_rigid_group.astype(np.int64)                   # [21, 14]
_ATOM14_GROUP_ONEHOT = np.eye(8, dtype=np.float32)[_ATOM14_GROUP]                   # [21, 14, 8]
_ATOM14_LIT_POS = rc.restype_atom14_rigid_group_positions.astype(np.float32)        # [21, 14, 3]
_ATOM14_MASK = rc.restype_atom14_mask.astype(np.float32)                            # [21, 14]
_ATOM37_TO_ATOM14 = rc.restype_atom37_to_atom14.astype(np.int64)                    # [21, 37]
_ATOM37_FROM_ATOM14_ONEHOT = np.eye(14, dtype=np.float32)[_ATOM37_TO_ATOM14]        # [21, 37, 14]


def restype_table(aatype, table):
    """table[aatype] for a constant numpy table [21, ...] and integer aatype [N] (one-hot product, exact)."""
    onehot = ops.one_hot(aatype.astype(ms.int32), NUM_RESTYPES, Tensor(1.0, ms.float32), Tensor(0.0, ms.float32))
    flat = Tensor(table.reshape(NUM_RESTYPES, -1), ms.float32)
    return kernels.matmul(onehot, flat).reshape(aatype.shape + table.shape[1:])


def make_rot_x(sin_angles, cos_angles):
    """Suppl. Alg. 25: rotations about the x axis [..., 3, 3] from sin/cos [...]."""
    zeros = ops.zeros_like(sin_angles)
    ones = ops.ones_like(sin_angles)
    rows = (ops.stack([ones, zeros, zeros], -1),
            ops.stack([zeros, cos_angles, -sin_angles], -1),
            ops.stack([zeros, sin_angles, cos_angles], -1))
    return ops.stack(rows, -2)


def _take_group(rigid, k):
    rot, trans = rigid
    return rot[:, k], trans[:, k]


def torsion_angles_to_frames(aatype, backb_to_global, torsion_angles_sin_cos):
    """Suppl. Alg. 24 lines 2-10: the 8 rigid-group frames of every residue in the global frame.

    aatype [N] int; backb_to_global (rot [N, 3, 3], trans [N, 3]) (translation in Angstrom);
    torsion_angles_sin_cos [N, 7, 2] (pre-omega, phi, psi, chi1..4 as (sin, cos)).
    Returns (rot [N, 8, 3, 3], trans [N, 8, 3]).
    """
    n = aatype.shape[0]
    default = restype_table(aatype, _DEFAULT_FRAMES)                     # [N, 8, 4, 4]
    default_rot, default_trans = default[..., :3, :3], default[..., :3, 3]
    sin_angles = torsion_angles_sin_cos[..., 0].astype(ms.float32)
    cos_angles = torsion_angles_sin_cos[..., 1].astype(ms.float32)
    # the backbone group gets the identity rotation
    sin_angles = ops.concat([ops.zeros((n, 1), ms.float32), sin_angles], -1)
    cos_angles = ops.concat([ops.ones((n, 1), ms.float32), cos_angles], -1)
    local = (g.rot_mul_rot(default_rot, make_rot_x(sin_angles, cos_angles)), default_trans)   # group -> parent

    # chi2..chi4 frames are relative to the previous chi frame: chain them onto the backbone frame
    chi1_to_backb = _take_group(local, 4)
    chi2_to_backb = g.rigid_compose(chi1_to_backb, _take_group(local, 5))
    chi3_to_backb = g.rigid_compose(chi2_to_backb, _take_group(local, 6))
    chi4_to_backb = g.rigid_compose(chi3_to_backb, _take_group(local, 7))
    to_backb_rot = ops.concat([local[0][:, :5], chi2_to_backb[0][:, None], chi3_to_backb[0][:, None],
                               chi4_to_backb[0][:, None]], 1)
    to_backb_trans = ops.concat([local[1][:, :5], chi2_to_backb[1][:, None], chi3_to_backb[1][:, None],
                                 chi4_to_backb[1][:, None]], 1)
    backb_rot, backb_trans = backb_to_global
    return g.rigid_compose((backb_rot[:, None], backb_trans[:, None]), (to_backb_rot, to_backb_trans))


def frames_and_literature_positions_to_atom14_pos(aatype, all_frames_to_global):
    """Suppl. Alg. 24 line 11: every atom's literature position placed by its rigid group's frame.

    aatype [N]; all_frames_to_global (rot [N, 8, 3, 3], trans [N, 8, 3]). Returns atom14 positions [N, 14, 3],
    zero for atoms the residue type does not have.
    """
    rot, trans = all_frames_to_global
    n = aatype.shape[0]
    group_onehot = restype_table(aatype, _ATOM14_GROUP_ONEHOT)                            # [N, 14, 8]
    flat = ops.concat([rot.reshape(n, 8, 9), trans], -1)                                  # [N, 8, 12]
    per_atom = ops.BatchMatMul()(group_onehot, flat)                                      # [N, 14, 12]
    atom_rot, atom_trans = per_atom[..., :9].reshape(n, 14, 3, 3), per_atom[..., 9:]
    lit = restype_table(aatype, _ATOM14_LIT_POS)                                          # [N, 14, 3]
    pos = g.rigid_apply((atom_rot, atom_trans), lit)
    return pos * restype_table(aatype, _ATOM14_MASK)[..., None]


def atom14_to_atom37(atom14_data, aatype, atom37_atom_exists):
    """Scatter per-residue atom14 data [N, 14, ...] into the atom37 layout [N, 37, ...], zero where
    ``atom37_atom_exists`` is 0. The index map is the residue type's (what make_atom14_masks puts in
    ``residx_atom37_to_atom14``)."""
    n = atom14_data.shape[0]
    select = restype_table(aatype, _ATOM37_FROM_ATOM14_ONEHOT)                            # [N, 37, 14]
    trailing = atom14_data.shape[2:]
    width = int(np.prod(trailing)) if trailing else 1
    data = atom14_data.astype(ms.float32).reshape(n, 14, width)
    out = ops.BatchMatMul()(select, data).reshape((n, 37) + trailing)
    mask = atom37_atom_exists.astype(ms.float32).reshape((n, 37) + (1,) * len(trailing))
    return out * mask
