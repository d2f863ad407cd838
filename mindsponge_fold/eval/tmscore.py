"""TM-score, GDT_TS and GDT_HA with the superposition search of the TMscore program (Zhang & Skolnick 2004).

Residue correspondence is given (paired Calpha coordinates); only the superposition is searched:

* Seeds: contiguous fragments of the aligned pairs of length L_ali, L_ali/2, L_ali/4, ... down to 4 (at most six
  lengths), starting at every position. Each seed is fitted by Kabsch.
* Refinement: from each seed, the pairs closer than ``d0_search - 1`` are collected (the cut-off grows by 0.5 A until
  at least 3 pairs qualify), then up to 20 times: fit on the collected pairs, re-collect the pairs closer than
  ``d0_search + 1``, stop when the set no longer changes.
* TM-score = max over every superposition visited of (1 / L_native) * sum_i 1 / (1 + (d_i / d0)^2), with
  d0 = 1.24 (L_native - 15)^(1/3) - 1.8 (at least 0.5; 0.5 when L_native <= 21) and d0_search = d0 clamped to
  [4.5, 8].
* GDT: for each cut-off c in (0.5, 1, 2, 4, 8) A, the largest number of pairs closer than c over the superpositions
  visited, divided by L_native. GDT_TS averages the 1/2/4/8 A fractions, GDT_HA the 0.5/1/2/4 A ones; both are
  reported in percent (0-100).

Every seed is searched at once per fragment length (batched Kabsch), so a 150-residue pair takes well under a second.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from mindsponge_fold.eval.superposition import superpose_batched

GDT_CUTOFFS = (0.5, 1.0, 2.0, 4.0, 8.0)
_MAX_ITERATIONS = 20
_MIN_SEED = 4
_MAX_SEED_LENGTHS = 6


@dataclasses.dataclass
class SuperpositionScores:
    tm_score: float          # [0, 1], normalised by the native length
    gdt_ts: float            # [0, 100]
    gdt_ha: float            # [0, 100]
    gdt_fractions: dict      # cut-off (A) -> fraction of native residues within it
    rotation: np.ndarray     # (3, 3) of the best-TM superposition (model -> native)
    translation: np.ndarray  # (3,)
    d0: float


def tm_d0(length: int) -> float:
    """TMscore's distance scale for a protein of ``length`` residues."""
    if length <= 21:
        return 0.5
    return max(0.5, 1.24 * (length - 15) ** (1.0 / 3.0) - 1.8)


def seed_lengths(n_aligned: int) -> list:
    """Fragment lengths of the seeds: n, n/2, n/4, ... (integer division), ending at the minimum (4), at most six."""
    minimum = min(_MIN_SEED, n_aligned)
    lengths = []
    for i in range(_MAX_SEED_LENGTHS - 1):
        length = int(n_aligned / 2 ** i)
        if length <= minimum:
            lengths.append(minimum)
            return lengths
        lengths.append(length)
    lengths.append(minimum)
    return lengths


def _select_close(dist: np.ndarray, cutoff: float) -> np.ndarray:
    """Pairs closer than ``cutoff`` per row of ``dist`` (S, N); rows with < 3 such pairs raise their cut-off by 0.5 A
    steps until 3 qualify (as TMscore does, when more than 3 pairs exist)."""
    n = dist.shape[1]
    if n <= 3:  # TMscore does not relax the cut-off here; an empty selection falls back to all pairs
        sel = dist < cutoff
        sel[~sel.any(axis=1)] = True
        return sel
    third = np.partition(dist, 2, axis=1)[:, 2]
    # smallest k >= 0 with third < cutoff + 0.5 k
    steps = np.where(third < cutoff, 0, np.floor((third - cutoff) / 0.5) + 1)
    row_cut = cutoff + 0.5 * steps
    return dist < row_cut[:, None]


def _distances(x: np.ndarray, y: np.ndarray, rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Distances (S, N) between each superposed copy of x and y."""
    diff = np.matmul(x[None], rot.transpose(0, 2, 1))
    diff += (trans[:, None, :] - y[None])
    return np.sqrt(np.einsum("sni,sni->sn", diff, diff))


def _unique_rows(selected: np.ndarray) -> np.ndarray:
    """Distinct rows of a boolean (S, N) array (first occurrences, in order)."""
    keys = {}
    for i, row in enumerate(np.packbits(selected, axis=1)):
        keys.setdefault(row.tobytes(), i)
    return selected[list(keys.values())]


class _Best:
    """Running maxima over all superpositions visited."""

    def __init__(self, d0: float, n_native: int):
        self.d0 = d0
        self.n_native = n_native
        self.tm = -1.0
        self.rotation = np.eye(3)
        self.translation = np.zeros(3)
        self.gdt_counts = np.zeros(len(GDT_CUTOFFS), np.int64)

    def update(self, dist: np.ndarray, rot: np.ndarray, trans: np.ndarray, rows=None) -> None:
        if rows is not None:
            dist, rot, trans = dist[rows], rot[rows], trans[rows]
        if dist.shape[0] == 0:
            return
        tm = np.sum(1.0 / (1.0 + (dist / self.d0) ** 2), axis=1) / self.n_native
        k = int(np.argmax(tm))
        if tm[k] > self.tm:
            self.tm = float(tm[k])
            self.rotation, self.translation = rot[k].copy(), trans[k].copy()
        counts = np.stack([(dist < c).sum(axis=1).max() for c in GDT_CUTOFFS])
        self.gdt_counts = np.maximum(self.gdt_counts, counts)


def tm_gdt_search(model_ca: np.ndarray, native_ca: np.ndarray, n_native: int | None = None) -> SuperpositionScores:
    """Search superpositions of paired Calpha coordinates ``model_ca`` onto ``native_ca`` (both (N_aligned, 3)).

    ``n_native`` is the normalisation length (all native residues, aligned or not); defaults to N_aligned.
    """
    x = np.asarray(model_ca, np.float64)
    y = np.asarray(native_ca, np.float64)
    if x.shape != y.shape or x.ndim != 2 or x.shape[1] != 3:
        raise ValueError(f"need paired (N, 3) coordinates, got {x.shape} and {y.shape}")
    n_ali = x.shape[0]
    n_native = n_ali if n_native is None else int(n_native)
    if n_native <= 0:
        raise ValueError("n_native must be positive")
    d0 = tm_d0(n_native)
    best = _Best(d0, n_native)
    if n_ali == 0:
        return _result(best, n_native)
    d0_search = min(max(d0, 4.5), 8.0)

    for length in seed_lengths(n_ali):
        starts = np.arange(n_ali - length + 1)
        weights = np.zeros((starts.size, n_ali))
        weights[starts[:, None], starts[:, None] + np.arange(length)[None, :]] = 1.0
        rot, trans = superpose_batched(x, y, weights)
        dist = _distances(x, y, rot, trans)
        best.update(dist, rot, trans)
        # Refinement advances every seed in lockstep; seeds whose selections coincide evolve identically from there
        # on, so only the distinct selections are carried (same result, far fewer fits).
        selected = _unique_rows(_select_close(dist, d0_search - 1.0))
        for _ in range(_MAX_ITERATIONS):
            if selected.shape[0] == 0:
                break
            rot, trans = superpose_batched(x, y, selected.astype(np.float64))
            dist = _distances(x, y, rot, trans)
            best.update(dist, rot, trans)
            new_sel = _select_close(dist, d0_search + 1.0)
            moving = ~np.all(new_sel == selected, axis=1)
            selected = _unique_rows(new_sel[moving])
    return _result(best, n_native)


def _result(best: _Best, n_native: int) -> SuperpositionScores:
    fractions = {c: float(n) / n_native for c, n in zip(GDT_CUTOFFS, best.gdt_counts)}
    gdt_ts = 100.0 * np.mean([fractions[c] for c in (1.0, 2.0, 4.0, 8.0)])
    gdt_ha = 100.0 * np.mean([fractions[c] for c in (0.5, 1.0, 2.0, 4.0)])
    return SuperpositionScores(tm_score=max(best.tm, 0.0), gdt_ts=float(gdt_ts), gdt_ha=float(gdt_ha),
                               gdt_fractions=fractions, rotation=best.rotation, translation=best.translation,
                               d0=best.d0)
