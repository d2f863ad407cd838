"""Training crops (supplement 1.2.8): which residues a training example keeps, applied to every per-residue
feature and target alike.

A crop is a sorted array of kept residue indices. ``contiguous_crop`` keeps a random window (AlphaFold 2's monomer
crop); ``spatial_crop`` keeps the residues whose CA atoms are nearest a random centre residue (the distance-based
crop of AlphaFold-Multimer / OpenFold, with a random resolved residue as the centre since a single chain has no
interface). ``crop_features`` gathers every feature of the shape table along its N_res axes, so cropped atoms are
exactly the source atoms at the kept indices; ``residue_index`` keeps the original numbering, so the relative
position encoding still sees the gaps of a spatial crop.
"""
from __future__ import annotations

import numpy as np

from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.data import feature_shapes as fs


def contiguous_crop(num_res: int, crop_size: int, rng) -> np.ndarray:
    """A window of ``min(crop_size, num_res)`` consecutive residues starting uniformly at random."""
    size = min(int(crop_size), int(num_res))
    start = int(rng.integers("crop_start", 0, num_res - size + 1))
    return np.arange(start, start + size)


def spatial_crop(all_atom_positions: np.ndarray, all_atom_mask: np.ndarray, crop_size: int, rng) -> np.ndarray:
    """The ``crop_size`` residues closest (CA-CA distance) to a random centre residue with a resolved CA.

    Residues without a CA come last (ordered by sequence separation from the centre); distance ties are broken by
    sequence separation. Falls back to a contiguous crop when no CA is resolved."""
    num_res = all_atom_positions.shape[0]
    if crop_size >= num_res:
        return np.arange(num_res)
    ca = rc.atom_order["CA"]
    has_ca = np.asarray(all_atom_mask)[:, ca] > 0
    candidates = np.flatnonzero(has_ca)
    if candidates.size == 0:
        return contiguous_crop(num_res, crop_size, rng)
    centre = int(candidates[int(rng.integers("crop_centre", 0, candidates.size))])
    ca_pos = np.asarray(all_atom_positions, np.float64)[:, ca]
    dist = np.linalg.norm(ca_pos - ca_pos[centre], axis=-1)
    dist[~has_ca] = np.inf
    separation = np.abs(np.arange(num_res) - centre)
    order = np.lexsort((separation, dist))      # primary key: distance; then sequence separation
    return np.sort(order[:crop_size])


def choose_crop(num_res: int, crop_size: int, rng, all_atom_positions=None, all_atom_mask=None,
                spatial_prob: float = 0.0) -> np.ndarray:
    """Spatial crop with probability ``spatial_prob`` (needs coordinates), else contiguous; all residues when the
    chain fits."""
    if crop_size is None or num_res <= crop_size:
        return np.arange(num_res)
    use_spatial = (spatial_prob > 0 and all_atom_positions is not None
                   and float(rng.uniform("crop_is_spatial", ())) < spatial_prob)
    if use_spatial:
        return spatial_crop(all_atom_positions, all_atom_mask, crop_size, rng)
    return contiguous_crop(num_res, crop_size, rng)


def residue_axes(name: str, spec: dict | None = None) -> tuple:
    """Axes of feature ``name`` that run over residues (N_res) in the shape table."""
    spec = spec or fs.PROCESSED_FEATURES
    return tuple(i for i, d in enumerate(spec[name].dims) if d == fs.N_RES)


def crop_features(features: dict, keep: np.ndarray, spec: dict | None = None, batch_dims: int = 0) -> dict:
    """Gather every table feature at residues ``keep`` along each of its N_res axes; ``seq_length`` becomes the
    crop length. Features outside the table pass unchanged."""
    spec = spec or fs.PROCESSED_FEATURES
    keep = np.asarray(keep, np.int64)
    out = {}
    for name, value in features.items():
        if name == "seq_length":
            out[name] = np.full(np.shape(value), len(keep), np.int32)
            continue
        if name not in spec:
            out[name] = value
            continue
        arr = np.asarray(value)
        for axis in residue_axes(name, spec):
            arr = np.take(arr, keep, axis=axis + batch_dims)
        out[name] = arr
    return out
