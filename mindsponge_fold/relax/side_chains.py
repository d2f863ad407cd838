"""Side-chain re-placement for entangled residues (an extension of AlphaFold's relax, not in the supplement).

A predicted model can have a side chain threaded through another residue (e.g. an aromatic ring pierced by a
backbone C=O or by another side chain's CB-CG bond). A restrained local minimisation cannot untangle this: it pulls
the atoms apart on the side they started on and leaves stretched rings and bonds (bond and within-residue
violations). :func:`replace_side_chains` turns the side chains of the given residues about their chi angles
(rigid rotations: bond lengths and angles are kept) and keeps, per residue, the rotation with the least steric
overlap with the rest of the model; the relax minimisation then starts from there.

Scoring of a candidate side chain (heavy atoms only, Angstrom):

* overlap with atoms of other residues: ``sum relu(r_a + r_b - CLASH_TOLERANCE - d)`` (van der Waals radii of the
  violation checks, a stricter tolerance than their 1.5 A so that the chosen rotamer is really clear);
* within the residue: distance bounds of the within-residue violation check (Supplement 1.9.11).

Among candidates scoring within ``SCORE_SLACK`` of the best, the one closest to the input is taken. Residues are
re-placed greedily, the largest improvement first, each at most once; PRO (ring closure) and CYS (disulfides) are
left alone.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools

import numpy as np

from mindsponge_fold.common import residue_constants as rc

CLASH_TOLERANCE = 0.5  # A, overlap allowed between atoms of different residues when scoring a side chain
SCORE_SLACK = 0.1  # A of summed overlap: candidates this close to the best count as equally good
MIN_GAIN = 0.5  # A of summed overlap a new placement must remove to be applied
ENVIRONMENT_RADIUS = 12.0  # A around the CA: atoms of other residues considered (ARG reaches ~7.5 A + contact)
SKIPPED = ("PRO", "CYS", "ALA", "GLY")
_FINE = np.deg2rad(np.arange(0, 360, 30))  # chi1, chi2 offsets
_COARSE = np.deg2rad(np.array([0.0, 120.0, 240.0]))  # chi3, chi4 offsets


def _rotation_matrices(axes: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """[C, 3, 3] rotations by ``angles`` [C] about the unit vectors ``axes`` [C, 3] (Rodrigues' formula)."""
    x, y, z = axes[:, 0], axes[:, 1], axes[:, 2]
    zero = np.zeros_like(x)
    k = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)
    s, c = np.sin(angles)[:, None, None], np.cos(angles)[:, None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def _residue_tables(resname: str):
    """Per chi angle: the atom14 slots it moves (rigid groups chi_k and beyond) and its (axis start, end) slots."""
    names = rc.restype_name_to_atom14_names[resname]
    group = {name: g for name, g, _ in rc.rigid_group_atom_positions[resname]}
    moved, axes = [], []
    for k, chi in enumerate(rc.chi_angles_atoms[resname]):
        moved.append(np.array([i for i, n in enumerate(names) if n and group.get(n, 0) >= 4 + k]))
        axes.append((names.index(chi[1]), names.index(chi[2])))
    return moved, axes


def candidate_positions(pos14: np.ndarray, resname: str) -> np.ndarray:
    """[C, 14, 3] the residue's atom14 positions for every combination of chi offsets (offset 0 first)."""
    moved, axes = _residue_tables(resname)
    grids = [_FINE if k < 2 else _COARSE for k in range(len(axes))]
    offsets = np.array(list(itertools.product(*grids)))  # [C, num_chi]
    out = np.repeat(pos14[None].astype(np.float64), len(offsets), axis=0)
    for k, (start, end) in enumerate(axes):  # chi k turns the atoms beyond its axis (earlier chis moved the axis)
        axis = out[:, end] - out[:, start]
        rot = _rotation_matrices(axis / np.linalg.norm(axis, axis=-1, keepdims=True), offsets[:, k])
        origin = out[:, end:end + 1]
        out[:, moved[k]] = (out[:, moved[k]] - origin) @ np.swapaxes(rot, 1, 2) + origin
    return out


@functools.lru_cache(maxsize=None)
def _distance_bounds():
    """Within-residue distance bounds of the violation checks (tolerances as in :mod:`..common.violations`)."""
    return rc.make_atom14_dists_bounds(overlap_tolerance=1.5, bond_length_tolerance_factor=12.0)


def _overlap_scores(cand: np.ndarray, exists: np.ndarray, radius: np.ndarray, env_pos: np.ndarray,
                    env_radius: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """[C] score of each candidate (see the module docstring)."""
    moving = np.flatnonzero(exists * (np.ptp(cand, axis=0).max(-1) > 0))  # atoms the chis move
    d_env = np.sqrt(((cand[:, moving, None] - env_pos[None, None]) ** 2).sum(-1))  # [C, M, E]
    between = np.maximum(radius[moving, None] + env_radius[None] - CLASH_TOLERANCE - d_env, 0.0).sum(axis=(1, 2))
    d_in = np.sqrt(((cand[:, :, None] - cand[:, None]) ** 2).sum(-1))  # [C, 14, 14]
    pair = exists[:, None] * exists[None] * (1 - np.eye(14))
    within = (pair * (np.maximum(lower - d_in, 0.0) + np.maximum(d_in - upper, 0.0))).sum(axis=(1, 2)) / 2
    return between + within


def best_placement(prot, i: int, positions: np.ndarray):
    """(current score, best score, best atom37 positions) of residue ``i``'s side chain in ``positions``."""
    resname = rc.restype_1to3[rc.restypes[int(prot.aatype[i])]]
    idx14 = rc.restype_atom14_to_atom37[int(prot.aatype[i])]
    exists = rc.restype_atom14_mask[int(prot.aatype[i])] * prot.atom_mask[i, idx14]
    if not exists[[rc.restype_name_to_atom14_names[resname].index(a) for chi in rc.chi_angles_atoms[resname]
                   for a in chi]].all():
        return 0.0, 0.0, positions[i]  # incomplete side chain: chi angles undefined
    pos14 = positions[i, idx14]
    cand = candidate_positions(pos14, resname)
    radii37 = np.array([rc.van_der_waals_radius[n[0]] for n in rc.atom_types])
    others = np.arange(len(prot.aatype)) != i
    env_mask = (prot.atom_mask > 0) & others[:, None]
    env_mask &= np.linalg.norm(positions - positions[i, rc.atom_order["CA"]], axis=-1) < ENVIRONMENT_RADIUS
    env_pos, env_radius = positions[env_mask], np.broadcast_to(radii37, env_mask.shape)[env_mask]
    bounds = _distance_bounds()
    aa = int(prot.aatype[i])
    scores = _overlap_scores(cand, exists, radii37[idx14], env_pos, env_radius, bounds["lower_bound"][aa],
                             bounds["upper_bound"][aa])
    shift = np.sqrt((((cand - pos14) ** 2).sum(-1) * exists).sum(-1) / exists.sum())
    good = scores <= scores.min() + SCORE_SLACK
    choice = int(np.flatnonzero(good)[np.argmin(shift[good])])
    new = positions[i].copy()
    new[idx14[exists > 0]] = cand[choice][exists > 0]
    return float(scores[0]), float(scores[choice]), new


def replace_side_chains(prot, residues) -> tuple:
    """Re-place the side chains of ``residues`` (0-based indices) greedily, largest gain first.

    Returns (new Protein, {residue index: (score before, score after)} for the residues changed).
    """
    positions = np.asarray(prot.atom_positions, np.float64).copy()
    todo = {int(i) for i in residues if int(prot.aatype[i]) < rc.restype_num
            and rc.restype_1to3[rc.restypes[int(prot.aatype[i])]] not in SKIPPED}
    changed, options = {}, {}
    ca = positions[:, rc.atom_order["CA"]]
    while todo:
        options.update({i: best_placement(prot, i, positions) for i in sorted(todo - set(options))})
        i = max(sorted(todo), key=lambda j: options[j][0] - options[j][1])
        before, after, new = options.pop(i)
        if before - after < MIN_GAIN:
            break
        positions[i] = new
        changed[i] = (before, after)
        todo.discard(i)
        near = np.linalg.norm(positions[i][prot.atom_mask[i] > 0][None] - ca[:, None], axis=-1).min(-1)
        for j in np.flatnonzero(near < ENVIRONMENT_RADIUS):  # their environment changed: score again
            options.pop(int(j), None)
    return dataclasses.replace(prot, atom_positions=positions.astype(np.float32)), changed
