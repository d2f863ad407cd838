"""Structure-module losses that compare predicted frames/atoms/torsions with the ground truth (MindSpore, float32).

* :func:`frame_aligned_point_error` - Suppl. Alg. 28 "computeFAPE", batched over any leading axes.
* :func:`backbone_fape_per_layer` - Alg. 20 line 17: backbone FAPE of every structure-module layer, clamped and
  unclamped (the caller mixes them per sample by ``use_clamped_fape``, Suppl. 1.11.5).
* :func:`renamed_ground_truth` - Alg. 26 "renameSymmetricGroundTruthAtoms" lines 1-5 (+ atom renaming).
* :func:`sidechain_fape` - Alg. 26 line 7 (frame renaming) + all-atom FAPE of the last layer (Alg. 20 line 19).
* :func:`torsion_angle_loss` - Alg. 27 "torsionAngleLoss" (chi loss + angle-norm loss over all layers).

Conventions: a rotation is [..., 3, 3] (row-major, acting on column vectors), a rigid a ``(rot, trans)`` pair,
QuatAffine tensors [..., 7] = (w, x, y, z, tx, ty, tz) with the quaternion used as given (not re-normalised, as
AlphaFold's ``QuatAffine.from_tensor``), rigid-group frames flat [..., 12] (rotation row-major, translation).
All functions are plain tensor code callable from a graph-mode ``construct``.
"""
import mindspore as ms
from mindspore import ops

from mindsponge_fold.model import geometry as geo
from mindsponge_fold.model import kernels

FAPE_EPSILON = 1e-4


def to_local_frames(rot, trans, points):
    """Coordinates of every point in every frame: T_f^-1 x_p.

    rot [..., F, 3, 3], trans [..., F, 3], points [..., P, 3] (same leading axes) -> [..., F, P, 3]. Computed as
    R^T x - R^T t, the inverse rigid applied to the point (the reference's order of operations), with all frames
    in one matmul: (x @ R_f)[p, i] = sum_j R_f[j, i] x_p[j].
    """
    k = rot.ndim - 3
    lead, num_frames, num_points = rot.shape[:k], rot.shape[-3], points.shape[-2]
    rot_cols = kernels.transpose(rot, tuple(range(k)) + (k + 1, k, k + 2)).reshape(lead + (3, num_frames * 3))
    rotated = ops.matmul(points, rot_cols).reshape(lead + (num_points, num_frames, 3))
    rotated = ops.swapaxes(rotated, -2, -3)                                    # [..., F, P, 3]
    inv_trans = -(rot * ops.expand_dims(trans, -1)).sum(-2)                    # R^T t, [..., F, 3]
    return rotated + ops.expand_dims(inv_trans, -2)


def fape_error_map(pred_frames, target_frames, pred_positions, target_positions, epsilon=FAPE_EPSILON):
    """Unclamped point errors d_ij = sqrt(|T_i^-1 x_j - T_i^true^-1 x_j^true|^2 + eps) (Alg. 28 lines 1-3).

    Frames are ``(rot [..., F, 3, 3], trans [..., F, 3])``; positions [..., P, 3]. Returns [..., F, P].
    """
    local_pred = to_local_frames(pred_frames[0], pred_frames[1], pred_positions)
    local_target = to_local_frames(target_frames[0], target_frames[1], target_positions)
    diff = local_pred - local_target
    sq = diff[..., 0] * diff[..., 0] + diff[..., 1] * diff[..., 1] + diff[..., 2] * diff[..., 2]
    return ops.sqrt(sq + epsilon)


def masked_fape(error_dist, frames_mask, positions_mask, length_scale, clamp_distance=None,
                epsilon=FAPE_EPSILON):
    """Alg. 28 lines 3-4: clamp (when ``clamp_distance`` is given), scale and average over valid frame/point pairs.

    error_dist [..., F, P]; frames_mask [..., F]; positions_mask [..., P] -> [...].
    """
    if clamp_distance is not None:
        error_dist = ops.clamp(error_dist, 0.0, float(clamp_distance))
    normed = error_dist / float(length_scale)
    normed = normed * ops.expand_dims(frames_mask, -1)
    normed = normed * ops.expand_dims(positions_mask, -2)
    norm = frames_mask.sum(-1) * positions_mask.sum(-1)
    return normed.sum((-2, -1)) / (epsilon + norm)


def frame_aligned_point_error(pred_frames, target_frames, frames_mask, pred_positions, target_positions,
                              positions_mask, length_scale, clamp_distance=None, epsilon=FAPE_EPSILON):
    """Suppl. Alg. 28 "computeFAPE" (batched over leading axes of the predicted frames/positions)."""
    err = fape_error_map(pred_frames, target_frames, pred_positions, target_positions, epsilon)
    return masked_fape(err, frames_mask, positions_mask, length_scale, clamp_distance, epsilon)


def rigid_from_quat_affine(tensor7):
    """QuatAffine tensor [..., 7] -> (rot, trans), quaternion used as stored."""
    _, rot, trans = geo.quat_affine_from_tensor(tensor7, normalize=False)
    return rot, trans


def backbone_fape_per_layer(traj, backbone_affine_tensor, backbone_affine_mask, clamp_distance, length_scale):
    """Backbone FAPE of every layer (Alg. 20 line 17): frames and points are the backbone frames / their origins (CA).

    traj [L, N, 7] (translations in Angstrom), ground truth [N, 7] + mask [N].
    Returns (clamped [L], unclamped [L]).
    """
    pred = rigid_from_quat_affine(traj)
    target = rigid_from_quat_affine(backbone_affine_tensor)
    err = fape_error_map(pred, target, pred[1], target[1])                      # [L, N, N]
    clamped = masked_fape(err, backbone_affine_mask, backbone_affine_mask, length_scale, clamp_distance)
    unclamped = masked_fape(err, backbone_affine_mask, backbone_affine_mask, length_scale, None)
    return clamped, unclamped


def mix_clamped_fape(clamped, unclamped, use_clamped_fape):
    """Suppl. 1.11.5: per sample, clamped FAPE with probability 0.9 (flag drawn by the data pipeline)."""
    return clamped * use_clamped_fape + unclamped * (1.0 - use_clamped_fape)


def _pairwise_atom_dists(x):
    """[N, 14, 3] -> [N, N, 14, 14] distances sqrt(1e-10 + |x_ia - x_jb|^2)."""
    diff = x[:, None, :, None, :] - x[None, :, None, :, :]
    return ops.sqrt(1e-10 + (diff * diff).sum(-1))


def find_optimal_renaming(atom14_gt_positions, atom14_alt_gt_positions, atom14_atom_is_ambiguous,
                          atom14_gt_exists, atom14_pred_positions):
    """Alg. 26 lines 1-5: 1.0 for residues whose swapped naming of symmetric atoms fits the prediction better.

    For each residue, the distances from its ambiguous atoms to every unambiguous atom are compared with the
    prediction's under both namings. A discrete choice: no gradient flows through it.
    """
    pred = ops.stop_gradient(atom14_pred_positions)
    pred_dists = _pairwise_atom_dists(pred)
    gt_dists = _pairwise_atom_dists(atom14_gt_positions)
    alt_gt_dists = _pairwise_atom_dists(atom14_alt_gt_positions)
    d = pred_dists - gt_dists
    lddt = ops.sqrt(1e-10 + d * d)
    d_alt = pred_dists - alt_gt_dists
    alt_lddt = ops.sqrt(1e-10 + d_alt * d_alt)
    mask = (atom14_gt_exists[:, None, :, None] * atom14_atom_is_ambiguous[:, None, :, None]
            * atom14_gt_exists[None, :, None, :] * (1.0 - atom14_atom_is_ambiguous[None, :, None, :]))
    per_res = (mask * lddt).sum((1, 2, 3))
    alt_per_res = (mask * alt_lddt).sum((1, 2, 3))
    return ops.stop_gradient((alt_per_res < per_res).astype(ms.float32))


def renamed_ground_truth(batch, atom14_pred_positions):
    """Alg. 26: the ground truth atoms under the naming that fits the prediction best.

    Returns dict alt_naming_is_better [N], renamed_atom14_gt_positions [N, 14, 3], renamed_atom14_gt_exists [N, 14].
    """
    alt = find_optimal_renaming(batch["atom14_gt_positions"], batch["atom14_alt_gt_positions"],
                                batch["atom14_atom_is_ambiguous"], batch["atom14_gt_exists"],
                                atom14_pred_positions)
    pos = ((1.0 - alt[:, None, None]) * batch["atom14_gt_positions"]
           + alt[:, None, None] * batch["atom14_alt_gt_positions"])
    exists = ((1.0 - alt[:, None]) * batch["atom14_gt_exists"] + alt[:, None] * batch["atom14_alt_gt_exists"])
    return {"alt_naming_is_better": alt, "renamed_atom14_gt_positions": pos, "renamed_atom14_gt_exists": exists}


def sidechain_fape(batch, renamed, pred_frames_flat12, pred_atom14, clamp_distance, length_scale):
    """All-atom FAPE of the last layer over the 8 rigid groups x 14 atoms of every residue (Alg. 20 line 19),
    with the ground-truth frames renamed like the atoms (Alg. 26 line 7).

    pred_frames_flat12 [N, 8, 12] and pred_atom14 [N, 14, 3] are the last layer's.
    """
    alt = renamed["alt_naming_is_better"]
    gt_frames = ((1.0 - alt[:, None, None]) * batch["rigidgroups_gt_frames"]
                 + alt[:, None, None] * batch["rigidgroups_alt_gt_frames"])
    target = geo.rigid_from_flat12(gt_frames.reshape(-1, 12))
    pred = geo.rigid_from_flat12(pred_frames_flat12.reshape(-1, 12))
    return frame_aligned_point_error(
        pred, target, batch["rigidgroups_gt_exists"].reshape(-1),
        pred_atom14.reshape(-1, 3), renamed["renamed_atom14_gt_positions"].reshape(-1, 3),
        renamed["renamed_atom14_gt_exists"].reshape(-1), length_scale, clamp_distance)


def torsion_angle_loss(angles_sin_cos, unnormalized_angles_sin_cos, chi_angles, chi_mask, chi_pi_periodic,
                       seq_mask):
    """Alg. 27 "torsionAngleLoss", averaged over the layers.

    angles_sin_cos / unnormalized_angles_sin_cos [L, N, 7, 2] (torsions: pre-omega, phi, psi, chi1-4 as (sin, cos));
    chi_angles, chi_mask [N, 4]; chi_pi_periodic [N, 4] (1 for chis symmetric under a pi rotation).
    Returns (chi_loss, angle_norm_loss): the squared chord distance to the closer of the true / pi-shifted chi over
    existing chis, and the mean |norm - 1| of the raw torsion predictions over existing residues.
    """
    num_layers = angles_sin_cos.shape[0]
    pred_chi = angles_sin_cos[:, :, 3:, :]                                      # [L, N, 4, 2]
    true = ops.stack([ops.sin(chi_angles), ops.cos(chi_angles)], -1)[None]    # [1, N, 4, 2]
    shifted = (1.0 - 2.0 * chi_pi_periodic)[None, :, :, None] * true
    d = true - pred_chi
    sq_err = (d * d).sum(-1)
    d_shift = shifted - pred_chi
    sq_err_shift = (d_shift * d_shift).sum(-1)
    sq_err = ops.minimum(sq_err, sq_err_shift)                                # [L, N, 4]
    chi_loss = (chi_mask[None] * sq_err).sum() / (chi_mask.sum() * num_layers + 1e-10)

    norm = ops.sqrt((unnormalized_angles_sin_cos * unnormalized_angles_sin_cos).sum(-1) + 1e-6)
    norm_err = ops.abs(norm - 1.0)                                              # [L, N, 7]
    mask = seq_mask[None, :, None]
    angle_norm_loss = (mask * norm_err).sum() / (seq_mask.sum() * (num_layers * norm_err.shape[-1]) + 1e-10)
    return chi_loss, angle_norm_loss
