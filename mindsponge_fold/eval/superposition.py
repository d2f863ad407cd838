"""Optimal rigid superposition (Kabsch) of point sets, single and batched, in plain numpy.

Convention: ``superpose(x, y)`` returns ``(rotation, translation)`` such that ``x @ rotation.T + translation`` is the
least-squares fit of ``x`` onto ``y`` (proper rotation, det = +1). The batched form takes per-set 0/1 (or real,
non-negative) weights over a shared list of point pairs, which is what the TM-score/GDT search needs: many candidate
superpositions, each fitted on a different subset of the same residue pairs.
"""
from __future__ import annotations

import numpy as np


def _rotation_from_covariance(cov: np.ndarray) -> np.ndarray:
    """Rotation(s) maximising trace(R @ cov) for covariance ``cov = sum_k (y_k - cy)(x_k - cx)^T``;
    shape (..., 3, 3)."""
    u, _, vt = np.linalg.svd(cov)
    # Reflection guard: flip the axis of the smallest singular value when det(U V^T) < 0.
    det = np.sign(np.linalg.det(u @ vt))
    det = np.where(det == 0, 1.0, det)
    fix = np.ones(cov.shape[:-1])
    fix[..., -1] = det
    return (u * fix[..., None, :]) @ vt


def superpose(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None):
    """Least-squares rigid fit of points ``x`` (N, 3) onto ``y`` (N, 3). Returns (rotation (3, 3), translation (3,))."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.shape != y.shape or x.ndim != 2 or x.shape[-1] != 3:
        raise ValueError(f"superpose needs two (N, 3) arrays of the same shape, got {x.shape} and {y.shape}")
    if x.shape[0] == 0:
        return np.eye(3), np.zeros(3)
    w = np.ones(x.shape[0]) if weights is None else np.asarray(weights, np.float64)
    rot, trans = superpose_batched(x, y, w[None, :])
    return rot[0], trans[0]


def superpose_batched(x: np.ndarray, y: np.ndarray, weights: np.ndarray):
    """One rigid fit of ``x`` onto ``y`` (both (N, 3)) per row of ``weights`` (S, N).

    Returns rotations (S, 3, 3) and translations (S, 3). Rows with zero total weight get the identity.
    """
    w = np.asarray(weights, np.float64)
    total = w.sum(axis=1)
    safe = np.where(total > 0, total, 1.0)
    cx = (w @ x) / safe[:, None]
    cy = (w @ y) / safe[:, None]
    # sum_k w_k y_k x_k^T - total * cy cx^T, without materialising the centred (S, N, 3) arrays.
    cov = np.einsum("sn,ni,nj->sij", w, y, x, optimize=True) - total[:, None, None] * cy[:, :, None] * cx[:, None, :]
    rot = _rotation_from_covariance(cov)
    rot[total <= 0] = np.eye(3)
    trans = cy - np.einsum("sij,sj->si", rot, cx)
    return rot, trans


def apply_transform(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """``points @ rotation.T + translation`` for points (..., 3)."""
    return np.asarray(points, np.float64) @ np.asarray(rotation).T + np.asarray(translation)


def rmsd(x: np.ndarray, y: np.ndarray) -> float:
    """Root-mean-square deviation between paired points, without any fitting."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.shape[0] == 0:
        return float("nan")
    return float(np.sqrt(np.mean(np.sum((x - y) ** 2, axis=-1))))


def superposed_rmsd(x: np.ndarray, y: np.ndarray) -> float:
    """RMSD of ``x`` to ``y`` after the optimal (Kabsch) superposition of ``x`` onto ``y``."""
    if np.asarray(x).shape[0] == 0:
        return float("nan")
    rot, trans = superpose(x, y)
    return rmsd(apply_transform(x, rot, trans), y)
