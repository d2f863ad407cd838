"""Structural violation losses and metrics in MindSpore (Suppl. 1.9.11, eq. 44-47), float32.

:class:`StructuralViolations` holds the stereochemistry tables (from :mod:`mindsponge_fold.common.residue_constants`)
and computes, from the final atom14 prediction:

* between residues: the peptide C-N bond length and the CA-C-N / C-N-CA angles (flat-bottom losses with a
  tolerance of ``violation_tolerance_factor`` literature standard deviations), and clashes between non-bonded
  atoms of different residues (van der Waals radii minus ``clash_overlap_tolerance``);
* within residues: bond/angle-distance bounds and clashes (``make_atom14_dists_bounds``);
* the per-atom / per-residue violation arrays, the loss of ``structural_violation_loss`` and the in-graph metrics.

The numpy twin for relax/evaluation lives in ``mindsponge_fold.common.violations``; this one is differentiable.
"""
import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops

from mindsponge_fold.common import residue_constants as rc

# atom14 slots of the backbone atoms
_N, _CA, _C = 0, 1, 2


def _pair_mean(mask, value):
    """sum(mask * value) / (sum(mask) + 1e-6), the between-residue loss mean."""
    return (mask * value).sum() / (mask.sum() + 1e-6)


def mask_mean(mask, value):
    """AlphaFold's masked mean over all axes of same-shaped mask and value (eps 1e-10)."""
    return (mask * value).sum() / (mask.sum() + 1e-10)


def _pad_end(x):
    """[N-1] -> [N] with a zero appended."""
    return ops.concat([x, ops.zeros((1,), x.dtype)], 0)


def _pad_start(x):
    return ops.concat([ops.zeros((1,), x.dtype), x], 0)


def _flat_bottom(value, ideal, tol, mask):
    """One between-residue geometry term (eq. 44, 45) per residue pair: the error sqrt(1e-6 + (value - ideal)^2), its
    flat-bottom loss relu(error - tol), that loss's masked mean and the hard violation mask (error > tol)."""
    d = value - ideal
    error = ops.sqrt(1e-6 + d * d)
    per_pair = ops.relu(error - tol)
    return per_pair, _pair_mean(mask, per_pair), mask * (error > tol).astype(ms.float32)


def _norm(v, eps):
    return ops.sqrt(eps + (v * v).sum(-1))


def between_residue_bond_loss(pos, atom_mask, residue_index, next_is_proline, tolerance_factor):
    """Peptide-bond geometry between consecutive residues (eq. 44, 45).

    pos [N, 14, 3]; atom_mask [N, 14]; residue_index [N] float; next_is_proline [N-1] float.
    Returns c_n / ca_c_n / c_n_ca loss means, per-residue loss sums (each bond's loss shared half/half by its two
    residues) and the per-residue hard violation mask.
    """
    this_ca, this_c = pos[:-1, _CA], pos[:-1, _C]
    next_n, next_ca = pos[1:, _N], pos[1:, _CA]
    this_ca_mask, this_c_mask = atom_mask[:-1, _CA], atom_mask[:-1, _C]
    next_n_mask, next_ca_mask = atom_mask[1:, _N], atom_mask[1:, _CA]
    no_gap = ((residue_index[1:] - residue_index[:-1]) == 1.0).astype(ms.float32)

    c_n_length = _norm(this_c - next_n, 1e-6)
    gt_length = ((1.0 - next_is_proline) * rc.between_res_bond_length_c_n[0]
                 + next_is_proline * rc.between_res_bond_length_c_n[1])
    gt_stddev = ((1.0 - next_is_proline) * rc.between_res_bond_length_stddev_c_n[0]
                 + next_is_proline * rc.between_res_bond_length_stddev_c_n[1])
    c_n_per_res, c_n_loss, c_n_violation = _flat_bottom(c_n_length, gt_length, tolerance_factor * gt_stddev,
                                                        this_c_mask * next_n_mask * no_gap)

    ca_c_length = _norm(this_ca - this_c, 1e-6)
    n_ca_length = _norm(next_n - next_ca, 1e-6)
    c_ca_unit = (this_ca - this_c) / ca_c_length[:, None]
    c_n_unit = (next_n - this_c) / c_n_length[:, None]
    n_ca_unit = (next_ca - next_n) / n_ca_length[:, None]

    # CA-C-N angle (cosine); the reference uses the C-N bond-length stddev as this angle's tolerance unit
    ca_c_n_per_res, ca_c_n_loss, ca_c_n_violation = _flat_bottom(
        (c_ca_unit * c_n_unit).sum(-1), rc.between_res_cos_angles_ca_c_n[0],
        tolerance_factor * rc.between_res_bond_length_stddev_c_n[0], this_ca_mask * this_c_mask * next_n_mask * no_gap)
    # C-N-CA angle (cosine)
    c_n_ca_per_res, c_n_ca_loss, c_n_ca_violation = _flat_bottom(
        ((-c_n_unit) * n_ca_unit).sum(-1), rc.between_res_cos_angles_c_n_ca[0],
        tolerance_factor * rc.between_res_cos_angles_c_n_ca[1], this_c_mask * next_n_mask * next_ca_mask * no_gap)

    per_bond = c_n_per_res + ca_c_n_per_res + c_n_ca_per_res
    per_residue_loss_sum = 0.5 * (_pad_end(per_bond) + _pad_start(per_bond))
    violation = ops.maximum(ops.maximum(c_n_violation, ca_c_n_violation), c_n_ca_violation)
    per_residue_violation = ops.maximum(_pad_end(violation), _pad_start(violation))
    return {"c_n_loss_mean": c_n_loss, "ca_c_n_loss_mean": ca_c_n_loss, "c_n_ca_loss_mean": c_n_ca_loss,
            "per_residue_loss_sum": per_residue_loss_sum, "per_residue_violation_mask": per_residue_violation}


def between_residue_clash_loss(pos, atom_exists, atom_radius, residue_index, c_n_bond_pair, cys_sg_pair,
                               overlap_tolerance):
    """Clashes between atoms of different residues (eq. 46, inter-residue part).

    Pairs are counted once (residue_index_i < residue_index_j); the peptide C(i)-N(i+1) bond and CYS SG-SG
    (disulfide) pairs are exempt (``c_n_bond_pair`` / ``cys_sg_pair``: [14, 14] one-hot pair tables).
    Returns mean_loss, per_atom_loss_sum [N, 14], per_atom_clash_mask [N, 14].
    """
    diff = pos[:, None, :, None, :] - pos[None, :, None, :, :]
    dists = ops.sqrt(1e-10 + (diff * diff).sum(-1))                          # [N, N, 14, 14]
    mask = atom_exists[:, None, :, None] * atom_exists[None, :, None, :]
    ri = residue_index[:, None, None, None]
    rj = residue_index[None, :, None, None]
    mask = mask * (ri < rj).astype(ms.float32)
    neighbour = ((ri + 1) == rj).astype(ms.float32)
    mask = mask * (1.0 - neighbour * c_n_bond_pair)
    mask = mask * (1.0 - cys_sg_pair)
    lower = mask * (atom_radius[:, None, :, None] + atom_radius[None, :, None, :])
    err = mask * ops.relu(lower - overlap_tolerance - dists)
    mean_loss = err.sum() / (1e-6 + mask.sum())
    per_atom_loss_sum = err.sum((0, 2)) + err.sum((1, 3))
    clash = mask * (dists < (lower - overlap_tolerance)).astype(ms.float32)
    per_atom_clash = ops.maximum(clash.max((0, 2)), clash.max((1, 3)))
    return {"mean_loss": mean_loss, "per_atom_loss_sum": per_atom_loss_sum, "per_atom_clash_mask": per_atom_clash}


def within_residue_violations(pos, atom_exists, lower_bound, upper_bound, off_diagonal):
    """Bond / angle-distance bounds and clashes inside each residue (eq. 46, intra-residue part).

    lower_bound / upper_bound [N, 14, 14]; off_diagonal [14, 14] = 1 - I.
    Returns per_atom_loss_sum [N, 14] and per_atom_violations [N, 14].
    """
    mask = off_diagonal[None] * (atom_exists[:, :, None] * atom_exists[:, None, :])
    diff = pos[:, :, None, :] - pos[:, None, :, :]
    dists = ops.sqrt(1e-10 + (diff * diff).sum(-1))                          # [N, 14, 14]
    loss = mask * (ops.relu(lower_bound - dists) + ops.relu(dists - upper_bound))
    per_atom_loss_sum = loss.sum(1) + loss.sum(2)
    outside = ops.logical_or(dists < lower_bound, dists > upper_bound).astype(ms.float32)
    violations = mask * outside
    per_atom_violations = ops.maximum(violations.max(1), violations.max(2))
    return {"per_atom_loss_sum": per_atom_loss_sum, "per_atom_violations": per_atom_violations}


def extreme_ca_ca_distance_violations(pos, atom_mask, residue_index, max_angstrom_tolerance=1.5):
    """Fraction of consecutive CA-CA pairs more than ``max_angstrom_tolerance`` beyond the trans-peptide 3.80 A."""
    this_ca, next_ca = pos[:-1, _CA], pos[1:, _CA]
    no_gap = ((residue_index[1:] - residue_index[:-1]) == 1.0).astype(ms.float32)
    dist = _norm(this_ca - next_ca, 1e-6)
    violations = ((dist - rc.ca_ca) > max_angstrom_tolerance).astype(ms.float32)
    mask = atom_mask[:-1, _CA] * atom_mask[1:, _CA] * no_gap
    return mask_mean(mask, violations)


def _atom14_radius_table():
    """[37] van der Waals radius of every atom37 type (element = first letter of the atom name)."""
    return np.array([rc.van_der_waals_radius[name[0]] for name in rc.atom_types], np.float32)


class StructuralViolations(nn.Cell):
    """find_structural_violations + violation metrics + structural_violation_loss (Suppl. 1.9.11) in one Cell.

    ``structure_module_config`` is the AlphaFold ``heads.structure_module`` config (violation_tolerance_factor,
    clash_overlap_tolerance).
    """

    def __init__(self, structure_module_config):
        super().__init__()
        self.tolerance_factor = float(structure_module_config.violation_tolerance_factor)
        self.overlap_tolerance = float(structure_module_config.clash_overlap_tolerance)
        bounds = rc.make_atom14_dists_bounds(overlap_tolerance=self.overlap_tolerance,
                                             bond_length_tolerance_factor=self.tolerance_factor)
        self.restype_lower_bound = Tensor(bounds["lower_bound"], ms.float32)    # [21, 14, 14]
        self.restype_upper_bound = Tensor(bounds["upper_bound"], ms.float32)
        self.atom37_radius = Tensor(_atom14_radius_table(), ms.float32)
        c_n = np.zeros((14, 14), np.float32)
        c_n[_C, _N] = 1.0
        self.c_n_bond_pair = Tensor(c_n)
        sg = rc.restype_name_to_atom14_names["CYS"].index("SG")
        cys = np.zeros((14, 14), np.float32)
        cys[sg, sg] = 1.0
        self.cys_sg_pair = Tensor(cys)
        self.off_diagonal = Tensor(1.0 - np.eye(14, dtype=np.float32))
        self.pro_index = int(rc.resname_to_idx["PRO"])

    def construct(self, batch, atom14_pred_positions):
        """Returns the violations dict (flat, AlphaFold's key names under between_residues/within_residues)."""
        aatype = batch["aatype"]
        atom_exists = batch["atom14_atom_exists"].astype(ms.float32)
        residue_index_f = batch["residue_index"].astype(ms.float32)
        next_is_proline = (aatype[1:] == self.pro_index).astype(ms.float32)
        bonds = between_residue_bond_loss(atom14_pred_positions, atom_exists, residue_index_f, next_is_proline,
                                          self.tolerance_factor)
        radius = atom_exists * ops.gather(self.atom37_radius, batch["residx_atom14_to_atom37"], 0)
        clashes = between_residue_clash_loss(atom14_pred_positions, atom_exists, radius, batch["residue_index"],
                                             self.c_n_bond_pair, self.cys_sg_pair, self.overlap_tolerance)
        aatype_c = ops.clamp(aatype, 0, 20)
        within = within_residue_violations(atom14_pred_positions, atom_exists,
                                           ops.gather(self.restype_lower_bound, aatype_c, 0),
                                           ops.gather(self.restype_upper_bound, aatype_c, 0), self.off_diagonal)
        per_residue = ops.maximum(ops.maximum(bonds["per_residue_violation_mask"],
                                              clashes["per_atom_clash_mask"].max(-1)),
                                  within["per_atom_violations"].max(-1))
        return {
            "between_residues/bonds_c_n_loss_mean": bonds["c_n_loss_mean"],
            "between_residues/angles_ca_c_n_loss_mean": bonds["ca_c_n_loss_mean"],
            "between_residues/angles_c_n_ca_loss_mean": bonds["c_n_ca_loss_mean"],
            "between_residues/connections_per_residue_loss_sum": bonds["per_residue_loss_sum"],
            "between_residues/connections_per_residue_violation_mask": bonds["per_residue_violation_mask"],
            "between_residues/clashes_mean_loss": clashes["mean_loss"],
            "between_residues/clashes_per_atom_loss_sum": clashes["per_atom_loss_sum"],
            "between_residues/clashes_per_atom_clash_mask": clashes["per_atom_clash_mask"],
            "within_residues/per_atom_loss_sum": within["per_atom_loss_sum"],
            "within_residues/per_atom_violations": within["per_atom_violations"],
            "total_per_residue_violations_mask": per_residue,
        }


def violation_loss(violations, atom14_atom_exists):
    """structural_violation_loss before its weight: bond + both angle means + (clash + within-residue) per atom."""
    num_atoms = atom14_atom_exists.sum()
    per_atom = (violations["between_residues/clashes_per_atom_loss_sum"]
                + violations["within_residues/per_atom_loss_sum"])
    return (violations["between_residues/bonds_c_n_loss_mean"]
            + violations["between_residues/angles_ca_c_n_loss_mean"]
            + violations["between_residues/angles_c_n_ca_loss_mean"]
            + per_atom.sum() / (1e-6 + num_atoms))


def violation_metrics(batch, atom14_pred_positions, violations):
    """In-graph metrics: fractions of residues with each kind of violation (and of extreme CA-CA gaps)."""
    seq_mask = batch["seq_mask"]
    return {
        "violations_extreme_ca_ca_distance": extreme_ca_ca_distance_violations(
            atom14_pred_positions, batch["atom14_atom_exists"].astype(ms.float32),
            batch["residue_index"].astype(ms.float32)),
        "violations_between_residue_bond": mask_mean(
            seq_mask, violations["between_residues/connections_per_residue_violation_mask"]),
        "violations_between_residue_clash": mask_mean(
            seq_mask, violations["between_residues/clashes_per_atom_clash_mask"].max(-1)),
        "violations_within_residue": mask_mean(
            seq_mask, violations["within_residues/per_atom_violations"].max(-1)),
        "violations_per_residue": mask_mean(seq_mask, violations["total_per_residue_violations_mask"]),
    }
