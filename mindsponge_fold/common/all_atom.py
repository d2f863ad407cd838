"""Numpy all-atom utilities: atom14/atom37 conversion, rigid-group frames, torsion angles, training targets.

These build the per-residue ground truth the structure-module losses consume (the same quantities as
AlphaFold's ``all_atom.atom37_to_frames`` / ``atom37_to_torsion_angles`` / ``get_alt_atom14``), and the inverse
direction (torsions -> frames -> atom positions, Algorithm 24) used for checks and post-processing.
Everything is float32 and works on a single chain: aatype [N], atom37 arrays [N, 37(, 3)].

MindSpore twin of Algorithm 24 (for the graph): ``mindsponge_fold.model.all_atom``; parity test: tests/test_twins.py.
"""
from typing import Dict, Optional

import numpy as np

from mindsponge_fold.common import geometry as geo
from mindsponge_fold.common import residue_constants as rc


def _aatype(aatype) -> np.ndarray:
    """Residue types as int, unknown/out-of-range types (X, gap, mask token) clamped to UNK (20)."""
    return np.minimum(np.asarray(aatype, dtype=np.int64), rc.unk_restype_index)


def make_atom14_masks(aatype) -> Dict[str, np.ndarray]:
    """atom14_atom_exists, residx_atom14_to_atom37, residx_atom37_to_atom14, atom37_atom_exists for ``aatype``."""
    aa = _aatype(aatype)
    return {
        "atom14_atom_exists": rc.restype_atom14_mask[aa],
        "residx_atom14_to_atom37": rc.restype_atom14_to_atom37[aa],
        "residx_atom37_to_atom14": rc.restype_atom37_to_atom14[aa],
        "atom37_atom_exists": rc.restype_atom37_mask[aa],
    }


def _gather_atoms(data, index):
    """data [N, A, ...] gathered along the atom axis with index [N, B] -> [N, B, ...]."""
    data = np.asarray(data)
    idx = index.reshape(index.shape + (1,) * (data.ndim - 2))
    return np.take_along_axis(data, idx, axis=1)


def atom37_to_atom14(aatype, atom37_data) -> np.ndarray:
    """[N, 37(, C)] -> [N, 14(, C)], zero where the atom14 slot is empty for the residue type."""
    aa = _aatype(aatype)
    out = _gather_atoms(atom37_data, rc.restype_atom14_to_atom37[aa])
    exists = rc.restype_atom14_mask[aa].reshape(aa.shape + (14,) + (1,) * (out.ndim - 2))
    return (out * exists).astype(out.dtype)


def atom14_to_atom37(aatype, atom14_data) -> np.ndarray:
    """[N, 14(, C)] -> [N, 37(, C)], zero for atoms the residue type does not have."""
    aa = _aatype(aatype)
    out = _gather_atoms(atom14_data, rc.restype_atom37_to_atom14[aa])
    return out * rc.restype_atom37_mask[aa].reshape(aa.shape + (37,) + (1,) * (out.ndim - 2))


def get_alt_atom14(aatype, positions, mask):
    """Atom14 positions and mask with the symmetric atoms of ASP/GLU/PHE/TYR swapped (Supplement Table 3)."""
    swap = rc.restype_atom14_swap_index[_aatype(aatype)]
    return _gather_atoms(positions, swap), _gather_atoms(mask, swap)


def pseudo_beta_fn(aatype, all_atom_positions, all_atom_mask=None):
    """CB position (CA for glycine) [N, 3] and, when a mask is given, its mask [N]."""
    is_gly = np.asarray(aatype) == rc.restype_order["G"]
    ca, cb = rc.atom_order["CA"], rc.atom_order["CB"]
    pos = np.where(is_gly[..., None], all_atom_positions[..., ca, :], all_atom_positions[..., cb, :])
    if all_atom_mask is None:
        return pos
    return pos, np.where(is_gly, all_atom_mask[..., ca], all_atom_mask[..., cb]).astype(np.float32)


def atom37_to_frames(aatype, all_atom_positions, all_atom_mask) -> Dict[str, np.ndarray]:
    """Frames of the 8 rigid groups from atom37 coordinates (Supplement 1.8.1, Table 2; Algorithm 21).

    Each group's frame is rigidFrom3Points(base atoms); the backbone frame is turned by diag(-1, 1, -1) so its x
    axis runs CA->C and N lies in the xy plane. Returns rigidgroups_gt_frames / rigidgroups_alt_gt_frames
    [N, 8, 12] (flat 12), rigidgroups_gt_exists, rigidgroups_group_exists, rigidgroups_group_is_ambiguous [N, 8].
    The alternative frame of a group affected by the renaming symmetry is rotated by pi about its x axis.
    """
    aa = _aatype(aatype)
    pos = np.asarray(all_atom_positions, np.float32)
    base_idx = rc.restype_rigidgroup_base_atom37_idx[aa]  # [N, 8, 3]
    base_pos = _gather_atoms(pos, base_idx.reshape(len(aa), 24)).reshape(len(aa), 8, 3, 3)
    frames = geo.Rigid.from_3_points(base_pos[:, :, 0], base_pos[:, :, 1], base_pos[:, :, 2])
    flip_backbone = np.tile(np.eye(3, dtype=np.float32), (8, 1, 1))
    flip_backbone[0] = np.diag([-1.0, 1.0, -1.0])
    frames = frames.compose_rot(flip_backbone)
    alt_frames = frames.compose_rot(rc.restype_rigidgroup_ambiguity_rot[aa])

    group_exists = rc.restype_rigidgroup_mask[aa]
    base_exist = _gather_atoms(np.asarray(all_atom_mask, np.float32), base_idx.reshape(len(aa), 24))
    gt_exists = base_exist.reshape(len(aa), 8, 3).min(axis=-1) * group_exists
    return {
        "rigidgroups_gt_frames": frames.to_flat12().astype(np.float32),
        "rigidgroups_gt_exists": gt_exists.astype(np.float32),
        "rigidgroups_group_exists": group_exists,
        "rigidgroups_group_is_ambiguous": rc.restype_rigidgroup_is_ambiguous[aa],
        "rigidgroups_alt_gt_frames": alt_frames.to_flat12().astype(np.float32),
    }


def _torsion_atoms(aa, pos, mask):
    """Positions [N, 7, 4, 3] and masks [N, 7] of the four atoms of pre-omega, phi, psi, chi1..4."""
    n_idx, ca_idx, c_idx, o_idx = (rc.atom_order[a] for a in ("N", "CA", "C", "O"))
    prev_pos = np.concatenate([np.zeros_like(pos[:1]), pos[:-1]], axis=0)
    prev_mask = np.concatenate([np.zeros_like(mask[:1]), mask[:-1]], axis=0)
    pre_omega = np.stack([prev_pos[:, ca_idx], prev_pos[:, c_idx], pos[:, n_idx], pos[:, ca_idx]], axis=1)
    phi = np.stack([prev_pos[:, c_idx], pos[:, n_idx], pos[:, ca_idx], pos[:, c_idx]], axis=1)
    psi = np.stack([pos[:, n_idx], pos[:, ca_idx], pos[:, c_idx], pos[:, o_idx]], axis=1)
    chi_idx = rc.chi_atom_indices_with_unk[aa].reshape(len(aa), 16)
    chis = _gather_atoms(pos, chi_idx).reshape(len(aa), 4, 4, 3)
    chi_mask = np.asarray(rc.chi_angles_mask + [[0.0] * 4], np.float32)[aa]
    chi_mask = chi_mask * _gather_atoms(mask, chi_idx).reshape(len(aa), 4, 4).prod(axis=-1)
    backbone_mask = np.stack([
        prev_mask[:, ca_idx] * prev_mask[:, c_idx] * mask[:, n_idx] * mask[:, ca_idx],
        prev_mask[:, c_idx] * mask[:, n_idx] * mask[:, ca_idx] * mask[:, c_idx],
        mask[:, n_idx] * mask[:, ca_idx] * mask[:, c_idx] * mask[:, o_idx]], axis=1)
    atoms = np.concatenate([pre_omega[:, None], phi[:, None], psi[:, None], chis], axis=1)
    return atoms, np.concatenate([backbone_mask, chi_mask], axis=1)


def atom37_to_torsion_angles(aatype, all_atom_pos, all_atom_mask,
                             placeholder_for_undefined: bool = False) -> Dict[str, np.ndarray]:
    """The 7 torsions (pre-omega, phi, psi, chi1-4) as (sin, cos) (Supplement 1.9.1 and Table 2).

    The angle of atoms (a, b, c, d) is read off as the position of d in the frame rigidFrom3Points(b, c, a);
    psi is measured on the backbone O (then negated to give the N-CA-C-N convention, as AlphaFold).
    Returns torsion_angles_sin_cos and alt_torsion_angles_sin_cos (pi-periodic chis shifted by pi)
    [N, 7, 2], torsion_angles_mask [N, 7]. Masked-out entries keep whatever the degenerate geometry gives
    unless ``placeholder_for_undefined``, which sets them to (sin, cos) = (1, 0) as AlphaFold does.
    """
    aa = _aatype(aatype)
    pos = np.asarray(all_atom_pos, np.float32)
    mask = np.asarray(all_atom_mask, np.float32)
    atoms, torsion_mask = _torsion_atoms(aa, pos, mask)
    frames = geo.Rigid.from_3_points(atoms[:, :, 1], atoms[:, :, 2], atoms[:, :, 0])
    local = frames.invert_apply(atoms[:, :, 3])
    sin_cos = np.stack([local[..., 2], local[..., 1]], axis=-1)
    sin_cos = sin_cos / np.sqrt(np.sum(sin_cos * sin_cos, axis=-1, keepdims=True) + 1e-8)
    sin_cos = sin_cos * np.array([1, 1, -1, 1, 1, 1, 1], np.float32)[:, None]
    mirror = np.concatenate([np.ones((len(aa), 3), np.float32),
                             1.0 - 2.0 * np.asarray(rc.chi_pi_periodic, np.float32)[aa]], axis=1)
    alt_sin_cos = sin_cos * mirror[..., None]
    if placeholder_for_undefined:
        placeholder = np.broadcast_to(np.array([1.0, 0.0], np.float32), sin_cos.shape)
        keep = torsion_mask[..., None]
        sin_cos = sin_cos * keep + placeholder * (1 - keep)
        alt_sin_cos = alt_sin_cos * keep + placeholder * (1 - keep)
    return {"torsion_angles_sin_cos": sin_cos.astype(np.float32),
            "alt_torsion_angles_sin_cos": alt_sin_cos.astype(np.float32),
            "torsion_angles_mask": torsion_mask.astype(np.float32)}


def torsion_angles_to_frames(aatype, backbone: geo.Rigid, torsion_angles_sin_cos) -> geo.Rigid:
    """Algorithm 24 lines 2-10: global frames [N, 8] of all rigid groups from the backbone frames [N] and the
    7 torsions (sin, cos) [N, 7, 2]; chi2..4 frames are chained onto chi1."""
    aa = _aatype(aatype)
    default = geo.Rigid.from_tensor4x4(rc.restype_rigid_group_default_frame[aa])
    sc = np.asarray(torsion_angles_sin_cos, np.float32)
    sin = np.concatenate([np.zeros((len(aa), 1), np.float32), sc[..., 0]], axis=-1)
    cos = np.concatenate([np.ones((len(aa), 1), np.float32), sc[..., 1]], axis=-1)
    rot_x = np.zeros((len(aa), 8, 3, 3), np.float32)  # Algorithm 25 makeRotX
    rot_x[..., 0, 0] = 1
    rot_x[..., 1, 1], rot_x[..., 1, 2], rot_x[..., 2, 1], rot_x[..., 2, 2] = cos, -sin, sin, cos
    local = default.compose_rot(rot_x)
    rots, trans = [local.rot[:, k] for k in range(8)], [local.trans[:, k] for k in range(8)]
    for k in (5, 6, 7):  # chi(k) frame relative to the backbone = chi(k-1)-to-backbone o chi(k)-to-chi(k-1)
        parent = geo.Rigid(rots[k - 1], trans[k - 1])
        chained = parent.compose(geo.Rigid(rots[k], trans[k]))
        rots[k], trans[k] = chained.rot, chained.trans
    to_backbone = geo.Rigid(np.stack(rots, axis=1), np.stack(trans, axis=1))
    return backbone[:, None].compose(to_backbone)


def frames_and_literature_positions_to_atom14_pos(aatype, all_frames: geo.Rigid) -> np.ndarray:
    """Algorithm 24 line 11: atom14 positions [N, 14, 3] = group frame applied to the literature position
    (zero for absent atoms)."""
    aa = _aatype(aatype)
    group = rc.restype_atom14_to_rigid_group[aa]  # [N, 14]
    rows = np.arange(len(aa))[:, None]
    atom_frames = geo.Rigid(all_frames.rot[rows, group], all_frames.trans[rows, group])
    pos = atom_frames.apply(rc.restype_atom14_rigid_group_positions[aa])
    return (pos * rc.restype_atom14_mask[aa][..., None]).astype(np.float32)


def make_ground_truth(aatype, all_atom_positions, all_atom_mask,
                      resolution: Optional[float] = None) -> Dict[str, np.ndarray]:
    """Per-residue structure targets of one chain: every array of the reference's ground_truth.npz.

    aatype [N] (restype_order, 20 = X), all_atom_positions [N, 37, 3], all_atom_mask [N, 37]. ``resolution``
    is passed through (as a float32 scalar) when given.
    """
    aa = _aatype(aatype)
    pos = np.asarray(all_atom_positions, np.float32)
    mask = np.asarray(all_atom_mask, np.float32)
    out = {"all_atom_positions": pos, "all_atom_mask": mask}
    if resolution is not None:
        out["resolution"] = np.asarray(resolution, np.float32)
    out["atom14_gt_positions"] = atom37_to_atom14(aa, pos)
    out["atom14_gt_exists"] = atom37_to_atom14(aa, mask)
    out["atom14_alt_gt_positions"], out["atom14_alt_gt_exists"] = get_alt_atom14(
        aa, out["atom14_gt_positions"], out["atom14_gt_exists"])
    out["atom14_atom_is_ambiguous"] = rc.restype_atom14_is_ambiguous[aa]
    out.update(atom37_to_frames(aa, pos, mask))
    out.update(atom37_to_torsion_angles(aa, pos, mask, placeholder_for_undefined=False))
    sin_cos = out["torsion_angles_sin_cos"][:, 3:]
    out["chi_angles"] = np.arctan2(sin_cos[..., 0], sin_cos[..., 1]).astype(np.float32)
    out["chi_mask"] = out["torsion_angles_mask"][:, 3:]
    backbone = geo.Rigid.from_flat12(out["rigidgroups_gt_frames"][:, 0])
    out["backbone_affine_tensor"] = backbone.to_quat_affine().astype(np.float32)
    out["backbone_affine_mask"] = out["rigidgroups_gt_exists"][:, 0]
    out["pseudo_beta"], out["pseudo_beta_mask"] = pseudo_beta_fn(aa, pos, mask)
    return out
