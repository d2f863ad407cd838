"""Structural violations of an atom14 structure (numpy): Supplement section 1.9.11, eqs. 44-47.

The same checks and numbers as AlphaFold's ``folding.find_structural_violations`` / ``compute_violation_metrics``
(reference semantics kept, including its quirks, so values can be compared with the fixtures and with the
MindSpore training loss):

* between-residue peptide geometry: C-N bond length, CA-C-N and C-N-CA angle cosines, flat-bottom loss beyond
  ``tolerance_factor`` standard deviations. As in the reference, the CA-C-N check uses the C-N *bond length*
  stddev (0.014) as its tolerance unit;
* between-residue clashes: non-bonded atom pairs of different residues closer than the sum of van der Waals
  radii minus ``overlap_tolerance``. The peptide C(i)-N(i+1) pairs are excluded, and (as in the reference) so
  are all pairs of atom14 slot 5 (the CYS SG slot) whatever the residue types;
* within-residue violations: atom pairs of one residue outside [lower, upper] of
  ``residue_constants.make_atom14_dists_bounds`` (bonds, bond angles, van der Waals clashes).

All functions take one chain: positions [N, 14, 3], masks [N, 14], aatype / residue_index [N].

MindSpore twin (the differentiable training loss): ``mindsponge_fold.train.loss_violations``; parity test:
tests/test_losses_parity.py::test_violations_match_numpy_twin.
"""
from typing import Dict

import numpy as np

from mindsponge_fold.common import residue_constants as rc


def _dist(a, b, eps):
    return np.sqrt(eps + np.sum(np.square(a - b), axis=-1))


def _relu(x):
    return np.maximum(x, 0.0)


def _mask_mean(mask, value, eps=1e-10):
    return np.sum(mask * value) / (np.sum(mask) + eps)


def _pad_both_sides_max(per_link):
    """Residue i is in links (i-1, i) and (i, i+1): max over them of a per-link value [N-1] -> [N]."""
    return np.maximum(np.pad(per_link, (0, 1)), np.pad(per_link, (1, 0)))


def extreme_ca_ca_distance_violations(pred_atom_positions, pred_atom_mask, residue_index,
                                      max_angstrom_tolerance: float = 1.5) -> np.ndarray:
    """Fraction of consecutive (no residue-number gap) CA-CA pairs longer than ca_ca + tolerance."""
    pos, mask = np.asarray(pred_atom_positions, np.float32), np.asarray(pred_atom_mask, np.float32)
    residue_index = np.asarray(residue_index, np.float32)
    dist = _dist(pos[:-1, 1], pos[1:, 1], 1e-6)
    no_gap = (residue_index[1:] - residue_index[:-1] == 1.0).astype(np.float32)
    mask = mask[:-1, 1] * mask[1:, 1] * no_gap
    return np.float32(_mask_mean(mask, (dist - rc.ca_ca > max_angstrom_tolerance).astype(np.float32)))


def between_residue_bond_loss(pred_atom_positions, pred_atom_mask, residue_index, aatype,
                              tolerance_factor_soft: float = 12.0,
                              tolerance_factor_hard: float = 12.0) -> Dict[str, np.ndarray]:
    """Flat-bottom losses on the peptide bond geometry between consecutive residues (eqs. 44, 45).

    Returns c_n_loss_mean, ca_c_n_loss_mean, c_n_ca_loss_mean (scalars), per_residue_loss_sum [N] (each link's
    loss split half/half between its two residues) and per_residue_violation_mask [N].
    """
    pos, mask = np.asarray(pred_atom_positions, np.float32), np.asarray(pred_atom_mask, np.float32)
    residue_index = np.asarray(residue_index, np.float32)
    ca_i, c_i, n_j, ca_j = pos[:-1, 1], pos[:-1, 2], pos[1:, 0], pos[1:, 1]
    m_ca_i, m_c_i, m_n_j, m_ca_j = mask[:-1, 1], mask[:-1, 2], mask[1:, 0], mask[1:, 1]
    no_gap = (residue_index[1:] - residue_index[:-1] == 1.0).astype(np.float32)
    next_is_pro = (np.asarray(aatype)[1:] == rc.resname_to_idx["PRO"]).astype(np.float32)

    def flat_bottom(value, target, stddev, link_mask):
        error = np.sqrt(1e-6 + np.square(value - target))
        loss = _relu(error - tolerance_factor_soft * stddev)
        mean = np.sum(link_mask * loss) / (np.sum(link_mask) + 1e-6)
        return loss, mean, link_mask * (error > tolerance_factor_hard * stddev)

    c_n_len = _dist(c_i, n_j, 1e-6)
    length = np.where(next_is_pro > 0, rc.between_res_bond_length_c_n[1],
                      rc.between_res_bond_length_c_n[0]).astype(np.float32)
    length_sd = np.where(next_is_pro > 0, rc.between_res_bond_length_stddev_c_n[1],
                         rc.between_res_bond_length_stddev_c_n[0]).astype(np.float32)
    c_n = flat_bottom(c_n_len, length, length_sd, m_c_i * m_n_j * no_gap)

    ca_c_len, n_ca_len = _dist(ca_i, c_i, 1e-6), _dist(n_j, ca_j, 1e-6)
    c_to_ca = (ca_i - c_i) / ca_c_len[:, None]
    c_to_n = (n_j - c_i) / c_n_len[:, None]
    n_to_ca = (ca_j - n_j) / n_ca_len[:, None]
    ca_c_n = flat_bottom(np.sum(c_to_ca * c_to_n, axis=-1), rc.between_res_cos_angles_ca_c_n[0],
                         rc.between_res_bond_length_stddev_c_n[0], m_ca_i * m_c_i * m_n_j * no_gap)
    c_n_ca = flat_bottom(np.sum(-c_to_n * n_to_ca, axis=-1), rc.between_res_cos_angles_c_n_ca[0],
                         rc.between_res_cos_angles_c_n_ca[1], m_c_i * m_n_j * m_ca_j * no_gap)

    per_link_loss = c_n[0] + ca_c_n[0] + c_n_ca[0]
    per_residue_loss = 0.5 * (np.pad(per_link_loss, (0, 1)) + np.pad(per_link_loss, (1, 0)))
    per_link_violation = np.max(np.stack([c_n[2], ca_c_n[2], c_n_ca[2]]), axis=0)
    return {"c_n_loss_mean": np.float32(c_n[1]), "ca_c_n_loss_mean": np.float32(ca_c_n[1]),
            "c_n_ca_loss_mean": np.float32(c_n_ca[1]),
            "per_residue_loss_sum": per_residue_loss.astype(np.float32),
            "per_residue_violation_mask": _pad_both_sides_max(per_link_violation).astype(np.float32)}


def between_residue_clash_loss(atom14_pred_positions, atom14_atom_exists, atom14_atom_radius, residue_index,
                               overlap_tolerance_soft: float = 1.5,
                               overlap_tolerance_hard: float = 1.5) -> Dict[str, np.ndarray]:
    """Clashes between atoms of different residues (eq. 46, inter-residue part).

    Returns mean_loss (sum of clash depths / number of atom pairs considered), per_atom_loss_sum [N, 14] and
    per_atom_clash_mask [N, 14].
    """
    pos = np.asarray(atom14_pred_positions, np.float32)
    exists = np.asarray(atom14_atom_exists, np.float32)
    radius = np.asarray(atom14_atom_radius, np.float32)
    res = np.asarray(residue_index)
    dists = np.sqrt(1e-10 + np.sum(np.square(pos[:, None, :, None] - pos[None, :, None, :]), axis=-1))
    pair_mask = exists[:, None, :, None] * exists[None, :, None, :]
    pair_mask = pair_mask * (res[:, None] < res[None, :])[:, :, None, None]
    # The peptide bond C(i)-N(i+1) is not a clash.
    peptide = np.zeros((14, 14), np.float32)
    peptide[2, 0] = 1.0
    pair_mask = pair_mask * (1.0 - (res[:, None] + 1 == res[None, :])[:, :, None, None] * peptide)
    # Disulfide bridges: slot 5 (CYS SG) pairs are exempt, for every residue type, as in the reference.
    sg = rc.restype_name_to_atom14_names["CYS"].index("SG")
    pair_mask[:, :, sg, sg] = 0.0
    lower = pair_mask * (radius[:, None, :, None] + radius[None, :, None, :])
    depth = pair_mask * _relu(lower - overlap_tolerance_soft - dists)
    clash = pair_mask * (dists < lower - overlap_tolerance_hard)
    return {"mean_loss": np.float32(np.sum(depth) / (1e-6 + np.sum(pair_mask))),
            "per_atom_loss_sum": (depth.sum(axis=(0, 2)) + depth.sum(axis=(1, 3))).astype(np.float32),
            "per_atom_clash_mask": np.maximum(clash.max(axis=(0, 2)), clash.max(axis=(1, 3))).astype(np.float32)}


def within_residue_violations(atom14_pred_positions, atom14_atom_exists, atom14_dists_lower_bound,
                              atom14_dists_upper_bound, tighten_bounds_for_loss: float = 0.0
                              ) -> Dict[str, np.ndarray]:
    """Atom pairs of the same residue outside their allowed distance range (eq. 46, intra-residue part).

    Returns per_atom_loss_sum [N, 14] and per_atom_violations [N, 14].
    """
    pos = np.asarray(atom14_pred_positions, np.float32)
    exists = np.asarray(atom14_atom_exists, np.float32)
    pair_mask = (1.0 - np.eye(14, dtype=np.float32))[None] * exists[:, :, None] * exists[:, None, :]
    dists = np.sqrt(1e-10 + np.sum(np.square(pos[:, :, None] - pos[:, None, :]), axis=-1))
    loss = pair_mask * (_relu(atom14_dists_lower_bound + tighten_bounds_for_loss - dists)
                        + _relu(dists - (atom14_dists_upper_bound - tighten_bounds_for_loss)))
    bad = pair_mask * ((dists < atom14_dists_lower_bound) | (dists > atom14_dists_upper_bound))
    return {"per_atom_loss_sum": (loss.sum(axis=1) + loss.sum(axis=2)).astype(np.float32),
            "per_atom_violations": np.maximum(bad.max(axis=1), bad.max(axis=2)).astype(np.float32)}


def atom14_vdw_radius(aatype) -> np.ndarray:
    """[N, 14] van der Waals radius of every atom14 slot (0 for empty slots)."""
    aa = np.minimum(np.asarray(aatype), rc.unk_restype_index)
    radius37 = np.array([rc.van_der_waals_radius[name[0]] for name in rc.atom_types], np.float32)
    return rc.restype_atom14_mask[aa] * radius37[rc.restype_atom14_to_atom37[aa]]


def find_structural_violations(aatype, residue_index, atom14_atom_exists, atom14_pred_positions,
                               violation_tolerance_factor: float = 12.0,
                               clash_overlap_tolerance: float = 1.5) -> Dict[str, dict]:
    """All violation checks of one atom14 structure, nested like AlphaFold's output:
    {'between_residues': {...}, 'within_residues': {...}, 'total_per_residue_violations_mask': [N]}."""
    aa = np.minimum(np.asarray(aatype), rc.unk_restype_index)
    exists = np.asarray(atom14_atom_exists, np.float32)
    pos = np.asarray(atom14_pred_positions, np.float32)
    connection = between_residue_bond_loss(pos, exists, residue_index, aa, violation_tolerance_factor,
                                           violation_tolerance_factor)
    clashes = between_residue_clash_loss(pos, exists, exists * atom14_vdw_radius(aa), residue_index,
                                         clash_overlap_tolerance, clash_overlap_tolerance)
    bounds = rc.make_atom14_dists_bounds(overlap_tolerance=clash_overlap_tolerance,
                                         bond_length_tolerance_factor=violation_tolerance_factor)
    within = within_residue_violations(pos, exists, bounds["lower_bound"][aa], bounds["upper_bound"][aa], 0.0)
    per_residue = np.max(np.stack([connection["per_residue_violation_mask"],
                                   clashes["per_atom_clash_mask"].max(axis=-1),
                                   within["per_atom_violations"].max(axis=-1)]), axis=0)
    return {
        "between_residues": {
            "bonds_c_n_loss_mean": connection["c_n_loss_mean"],
            "angles_ca_c_n_loss_mean": connection["ca_c_n_loss_mean"],
            "angles_c_n_ca_loss_mean": connection["c_n_ca_loss_mean"],
            "connections_per_residue_loss_sum": connection["per_residue_loss_sum"],
            "connections_per_residue_violation_mask": connection["per_residue_violation_mask"],
            "clashes_mean_loss": clashes["mean_loss"],
            "clashes_per_atom_loss_sum": clashes["per_atom_loss_sum"],
            "clashes_per_atom_clash_mask": clashes["per_atom_clash_mask"],
        },
        "within_residues": {
            "per_atom_loss_sum": within["per_atom_loss_sum"],
            "per_atom_violations": within["per_atom_violations"],
        },
        "total_per_residue_violations_mask": per_residue.astype(np.float32),
    }


def compute_violation_metrics(residue_index, atom14_atom_exists, seq_mask, atom14_pred_positions,
                              violations) -> Dict[str, np.float32]:
    """Scalar summaries: extreme CA-CA fraction and the seq_mask-weighted fraction of residues with each kind of
    violation (violations_between_residue_bond / _clash, violations_within_residue, violations_per_residue)."""
    seq_mask = np.asarray(seq_mask, np.float32)
    between, within = violations["between_residues"], violations["within_residues"]
    return {
        "violations_extreme_ca_ca_distance": extreme_ca_ca_distance_violations(
            atom14_pred_positions, atom14_atom_exists, residue_index),
        "violations_between_residue_bond": np.float32(
            _mask_mean(seq_mask, between["connections_per_residue_violation_mask"])),
        "violations_between_residue_clash": np.float32(
            _mask_mean(seq_mask, between["clashes_per_atom_clash_mask"].max(axis=-1))),
        "violations_within_residue": np.float32(_mask_mean(seq_mask, within["per_atom_violations"].max(axis=-1))),
        "violations_per_residue": np.float32(_mask_mean(seq_mask, violations["total_per_residue_violations_mask"])),
    }


def structural_violation_loss(violations, atom14_atom_exists) -> np.float32:
    """Violation loss term (eq. 47, weight 1): bond + two angle means + (clash + within-residue sums) / #atoms."""
    between, within = violations["between_residues"], violations["within_residues"]
    num_atoms = np.sum(np.asarray(atom14_atom_exists, np.float32))
    return np.float32(between["bonds_c_n_loss_mean"] + between["angles_ca_c_n_loss_mean"]
                      + between["angles_c_n_ca_loss_mean"]
                      + np.sum(between["clashes_per_atom_loss_sum"] + within["per_atom_loss_sum"]) / (1e-6 + num_atoms))


def flatten(violations, prefix: str = "") -> Dict[str, np.ndarray]:
    """{'between_residues/bonds_c_n_loss_mean': ..., ...}: the nested result with '/'-joined keys."""
    flat = {}
    for key, value in violations.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}/"))
        else:
            flat[prefix + key] = value
    return flat


def violation_metrics(prot, violation_tolerance_factor: float = 12.0, clash_overlap_tolerance: float = 1.5) -> dict:
    """Violations of a heavy-atom model (a ``protein.Protein``), as used by relax and evaluation.

    Only atoms present in the model are checked (absent atoms are neither clashing nor bonded). Returns the
    metrics of :func:`compute_violation_metrics` plus ``residue_violations`` (0-based indices of residues with
    any violation), ``num_residue_violations``, ``counts`` (residues per kind: 'between_residue_bond',
    'between_residue_clash', 'within_residue') and ``structural_violations`` (the nested arrays).
    """
    aatype = np.minimum(np.asarray(prot.aatype), rc.unk_restype_index)
    idx14 = rc.restype_atom14_to_atom37[aatype]
    rows = np.arange(len(aatype))[:, None]
    pos14 = np.asarray(prot.atom_positions, np.float32)[rows, idx14]
    exists = rc.restype_atom14_mask[aatype] * (np.asarray(prot.atom_mask, np.float32)[rows, idx14] > 0)
    found = find_structural_violations(aatype, prot.residue_index, exists, pos14, violation_tolerance_factor,
                                       clash_overlap_tolerance)
    metrics = compute_violation_metrics(prot.residue_index, exists, np.ones(len(aatype), np.float32), pos14, found)
    between, within = found["between_residues"], found["within_residues"]
    flagged = np.flatnonzero(found["total_per_residue_violations_mask"])
    metrics.update(
        residue_violations=flagged,
        num_residue_violations=int(len(flagged)),
        counts={"between_residue_bond": int(between["connections_per_residue_violation_mask"].sum()),
                "between_residue_clash": int(between["clashes_per_atom_clash_mask"].max(axis=-1, initial=0).sum()),
                "within_residue": int(within["per_atom_violations"].max(axis=-1, initial=0).sum())},
        structural_violations=found)
    return metrics
