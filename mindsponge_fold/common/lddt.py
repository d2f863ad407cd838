"""lDDT (Mariani et al. 2013) the way OpenStructure's lDDTScorer computes it, in plain numpy.

Definition used here (all-atom and Calpha-only alike):

* Contacts come from the NATIVE structure only: every pair of native atoms closer than the inclusion radius (15 A),
  excluding pairs within the same residue (for Calpha-only that just excludes self-pairs).
* A contact is scored at each threshold t in (0.5, 1, 2, 4) A as conserved when |d_model - d_native| <= t. A contact
  one of whose atoms is missing from the model counts as not conserved at every threshold, so missing model residues
  and atoms lower the score. Model atoms absent from the native are ignored.
* Global lDDT = conserved (summed over thresholds) / (number of thresholds * number of contacts).
* Per-residue lDDT = the same ratio over the contacts that involve an atom of that residue; 0 for a native residue
  without any contact, NaN for a native residue the model does not cover at all.
* Symmetric side chains (ASP OD1/OD2, GLU OE1/OE2, LEU CD1/CD2, VAL CG1/CG2, ARG NH1/NH2, PHE and TYR CD1/CD2 +
  CE1/CE2): for each model residue the naming (as given or swapped) that conserves more contacts towards the
  non-symmetric atoms is kept before scoring, as OpenStructure does.

AlphaFold's training-time ``lddt`` (model/lddt.py) is the Calpha special case without missing-atom handling or
symmetry; on complete Calpha traces the two agree (its strict ``<`` vs ``<=`` only differs on exact ties).
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy.spatial import cKDTree

LDDT_THRESHOLDS = (0.5, 1.0, 2.0, 4.0)
INCLUSION_RADIUS = 15.0

# Residue name -> pairs of atom names whose naming is ambiguous (OpenStructure's default symmetry settings).
SYMMETRIC_ATOMS = {
    "ASP": (("OD1", "OD2"),),
    "GLU": (("OE1", "OE2"),),
    "LEU": (("CD1", "CD2"),),
    "VAL": (("CG1", "CG2"),),
    "ARG": (("NH1", "NH2"),),
    "PHE": (("CD1", "CD2"), ("CE1", "CE2")),
    "TYR": (("CD1", "CD2"), ("CE1", "CE2")),
}


@dataclasses.dataclass
class LDDTResult:
    score: float              # global lDDT in [0, 1] (NaN when the native has no contact)
    per_residue: np.ndarray   # (N_res,) float, NaN where the model has no atom of the residue
    n_contacts: int


def _native_contacts(positions: np.ndarray, residue: np.ndarray, radius: float):
    """Pairs (i < j) of flattened native atoms in different residues closer than ``radius``, and their distances."""
    if positions.shape[0] < 2:
        return np.zeros((0, 2), np.int64), np.zeros(0)
    pairs = cKDTree(positions).query_pairs(radius, output_type="ndarray")
    if pairs.size == 0:
        return np.zeros((0, 2), np.int64), np.zeros(0)
    dist = np.linalg.norm(positions[pairs[:, 0]] - positions[pairs[:, 1]], axis=-1)
    keep = (dist < radius) & (residue[pairs[:, 0]] != residue[pairs[:, 1]])
    return pairs[keep], dist[keep]


def _conserved(model_xyz, model_ok, pairs, native_dist, thresholds) -> np.ndarray:
    """Number of thresholds (0..len) each contact is conserved at; 0 when a model atom is missing."""
    a, b = pairs[:, 0], pairs[:, 1]
    d_model = np.linalg.norm(model_xyz[a] - model_xyz[b], axis=-1)
    diff = np.abs(d_model - native_dist)
    count = np.zeros(len(pairs), np.int64)
    for t in thresholds:
        count += diff <= t
    return np.where(model_ok[a] & model_ok[b], count, 0)


def _symmetry_groups(res_names, atom_names, flat_index, model_mask, n_flat):
    """For every residue with ambiguous atoms present in both structures: a list of (flat_i, flat_j) swaps.

    Also returns the set (boolean over flat atoms) of native atoms that belong to a symmetric pair.
    """
    atom_col = {name: k for k, name in enumerate(atom_names)}
    is_sym = np.zeros(n_flat, bool)
    groups = []
    for r, name in enumerate(res_names):
        swaps = []
        for a_name, b_name in SYMMETRIC_ATOMS.get(name, ()):
            if a_name not in atom_col or b_name not in atom_col:
                continue
            ia, ib = flat_index[r, atom_col[a_name]], flat_index[r, atom_col[b_name]]
            for i in (ia, ib):
                if i >= 0:
                    is_sym[i] = True
            if ia >= 0 and ib >= 0 and model_mask[r, atom_col[a_name]] and model_mask[r, atom_col[b_name]]:
                swaps.append((ia, ib))
        if swaps:
            groups.append(swaps)
    return groups, is_sym


def _resolve_symmetry(model_xyz, model_ok, pairs, native_dist, thresholds, groups, is_sym):
    """Swap ambiguous model atoms in place where the swapped naming conserves more contacts to non-symmetric atoms."""
    if not groups:
        return model_xyz
    group_of = np.full(model_xyz.shape[0], -1)
    swapped = model_xyz.copy()
    for g, swaps in enumerate(groups):
        for i, j in swaps:
            group_of[i] = group_of[j] = g
            swapped[i], swapped[j] = model_xyz[j], model_xyz[i]
    a, b = pairs[:, 0], pairs[:, 1]
    # contacts between an atom of a swappable group and a non-symmetric atom
    sym_a = (group_of[a] >= 0) & ~is_sym[b]
    sym_b = (group_of[b] >= 0) & ~is_sym[a]
    rel = sym_a | sym_b
    if not rel.any():
        return model_xyz
    owner = np.where(sym_a, group_of[a], group_of[b])[rel]
    as_is = _conserved(model_xyz, model_ok, pairs[rel], native_dist[rel], thresholds)
    flipped = _conserved(swapped, model_ok, pairs[rel], native_dist[rel], thresholds)
    gain = np.bincount(owner, weights=flipped - as_is, minlength=len(groups))
    out = model_xyz.copy()
    for g in np.flatnonzero(gain > 0):
        for i, j in groups[g]:
            out[i], out[j] = model_xyz[j], model_xyz[i]
    return out


def lddt(model_positions, model_mask, native_positions, native_mask, residue_names=None, atom_names=None,
         inclusion_radius: float = INCLUSION_RADIUS, thresholds=LDDT_THRESHOLDS,
         resolve_symmetry: bool = True) -> LDDTResult:
    """lDDT of a model against its native, both given per residue: positions (N_res, N_atom, 3), masks (N_res, N_atom).

    Residue r of the model must correspond to residue r of the native (see ``eval.matching``); unmatched native
    residues simply have an all-zero model mask. ``residue_names`` (three-letter, per native residue) and
    ``atom_names`` (per atom column, e.g. AlphaFold's 37 atom types) are needed only for the symmetry resolution.
    """
    native_positions = np.asarray(native_positions, np.float64)
    model_positions = np.asarray(model_positions, np.float64)
    native_mask = np.asarray(native_mask) > 0
    model_mask = np.asarray(model_mask) > 0
    if native_positions.shape != model_positions.shape or native_mask.shape != native_positions.shape[:2] \
            or model_mask.shape != native_mask.shape:
        raise ValueError(f"lddt: shape mismatch (model {model_positions.shape}/{model_mask.shape}, "
                         f"native {native_positions.shape}/{native_mask.shape})")
    n_res = native_mask.shape[0]
    res_of, col_of = np.nonzero(native_mask)
    flat_index = np.full(native_mask.shape, -1, np.int64)
    flat_index[res_of, col_of] = np.arange(res_of.size)
    native_xyz = native_positions[res_of, col_of]
    model_xyz = model_positions[res_of, col_of]
    model_ok = model_mask[res_of, col_of]

    pairs, native_dist = _native_contacts(native_xyz, res_of, inclusion_radius)
    if resolve_symmetry and residue_names is not None and atom_names is not None and len(pairs):
        groups, is_sym = _symmetry_groups(residue_names, atom_names, flat_index, model_mask, res_of.size)
        model_xyz = _resolve_symmetry(model_xyz, model_ok, pairs, native_dist, thresholds, groups, is_sym)

    n_t = len(thresholds)
    conserved = _conserved(model_xyz, model_ok, pairs, native_dist, thresholds)
    ends = np.concatenate([res_of[pairs[:, 0]], res_of[pairs[:, 1]]]) if len(pairs) else np.zeros(0, np.int64)
    expected = np.bincount(ends, minlength=n_res).astype(np.float64)
    kept = np.bincount(ends, weights=np.concatenate([conserved, conserved]), minlength=n_res)
    per_res = np.where(expected > 0, kept / (n_t * np.maximum(expected, 1)), 0.0)
    covered = model_mask.any(axis=1) & native_mask.any(axis=1)
    per_res = np.where(covered, per_res, np.nan)
    score = float(conserved.sum() / (n_t * len(pairs))) if len(pairs) else float("nan")
    return LDDTResult(score=score, per_residue=per_res, n_contacts=int(len(pairs)))
