"""Which training samples each epoch visits (Suppl. 1.2.5), identical on every rank and across resume.

AlphaFold samples PDB chains with probability proportional to

    w = (1 / cluster_size) * max(min(N_res, 512), 256) / 512

(inverse size of the chain's 40 %-identity cluster, times a length term that favours long chains up to 512 residues
and treats chains shorter than 256 as 256). Here an epoch is ``N`` draws (``N`` = samples in the dataset):

* ``weighted`` (the paper's): ``N`` draws with replacement, probability ``w / sum(w)``;
* ``uniform``: a permutation (every sample once per epoch).

The draw is a function of ``(seed, epoch)`` only: every rank computes the same list, pads it by wrapping to a
multiple of the group size and takes every ``size``-th entry from its rank (:func:`rank_share`), so the ranks' shares
are disjoint slices of one draw and a resumed run (which skips the consumed prefix) continues the same draw.

Cluster ids and sizes come from the make-training-set chain table (``chains.tsv``) stored per sample in the
MindRecord manifest (``make-mindrecord --chain-table``); without one every sample is its own cluster (size 1).
"""
from __future__ import annotations


import numpy as np

from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data import chain_table

SAMPLING_MODES = ("weighted", "uniform")
_DRAW_TAG = 0x5A4D          # separates the sampler's stream from the other seeded streams
LENGTH_FLOOR, LENGTH_CAP = 256, 512


def read_chain_table(path) -> dict[str, dict]:
    """make-training-set's ``chains.tsv`` (read and checked by
    :func:`mindsponge_fold.data.chain_table.read_chain_table`) keyed by chain id: ``{length, resolution (0.0 when
    the entry has none), release_date, cluster_id, cluster_size}``."""
    return {r.chain_id: {"length": r.length, "resolution": 0.0 if r.resolution is None else float(r.resolution),
                         "release_date": r.release_date, "cluster_id": r.cluster_id, "cluster_size": r.cluster_size}
            for r in chain_table.read_chain_table(path)}


def length_term(num_res) -> np.ndarray:
    """Suppl. 1.2.5: max(min(N_res, 512), 256) / 512."""
    return np.maximum(np.minimum(np.asarray(num_res, np.float64), LENGTH_CAP), LENGTH_FLOOR) / LENGTH_CAP


def sample_weights(seq_lengths, cluster_sizes) -> np.ndarray:
    """Suppl. 1.2.5 sampling weight of each chain: (1 / cluster_size) * length term (not normalised)."""
    sizes = np.asarray(cluster_sizes, np.float64)
    return length_term(seq_lengths) / np.maximum(sizes, 1.0)


def epoch_draw(weights, seed: int, epoch: int, mode: str = "weighted", stream: int = 0) -> np.ndarray:
    """Indices (into ``weights``) of one epoch's ``len(weights)`` draws; a function of (seed, epoch, stream) only.
    ``stream`` separates independent sources (e.g. PDB and distillation) under one seed."""
    if mode not in SAMPLING_MODES:
        raise InputError(f"sampling must be one of {', '.join(SAMPLING_MODES)}, got {mode!r}")
    w = np.asarray(weights, np.float64)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) % 2 ** 32, int(epoch), int(stream), _DRAW_TAG]))
    if mode == "uniform":
        return rng.permutation(len(w))
    return rng.choice(len(w), size=len(w), replace=True, p=w / w.sum())


def rank_share(draw, rank: int | None, size: int | None) -> np.ndarray:
    """Rank ``rank``'s entries of a draw: padded by wrapping to a multiple of ``size``, every ``size``-th from
    ``rank`` (all ranks get the same number of samples, so they stay in step)."""
    draw = np.asarray(draw)
    if not size or size <= 1:
        return draw
    padded = np.resize(draw, -(-len(draw) // size) * size)
    return padded[int(rank)::int(size)]


def manifest_rows(manifest: dict) -> list[str]:
    """Sample names in MindDataset row order for the dataset's shard files read unshuffled: shard by shard (file
    name order = shard index), within a shard in name order (how :func:`mindrecord.convert` writes them)."""
    samples = manifest["samples"]
    return sorted(samples, key=lambda n: (int(samples[n].get("shard", 0)), n))


def manifest_weights(manifest: dict, names: list[str]) -> np.ndarray:
    """Sampling weights of ``names`` from their manifest entries (``cluster_size`` absent: 1)."""
    samples = manifest["samples"]
    return sample_weights([samples[n]["seq_length"] for n in names],
                          [samples[n].get("cluster_size", 1) for n in names])


def draw_summary(names: list[str], draw, manifest: dict) -> dict:
    """What one epoch's draw chose: draws, distinct samples and clusters, distillation examples."""
    samples = manifest["samples"]
    chosen = [names[i] for i in np.asarray(draw)]
    return {"draws": len(chosen), "samples": len(set(chosen)),
            "clusters": len({samples[n].get("cluster_id", n) for n in chosen}),
            "distillation": sum(bool(samples[n].get("is_distillation")) for n in chosen)}


CHAIN_FIELDS = ("cluster_id", "cluster_size", "resolution", "release_date")


def check_table_lists(names, table: dict, source=None) -> None:
    """InputError when the chain table does not list every sample name (checked before anything is written)."""
    missing = [n for n in names if n not in table]
    if missing:
        raise InputError(f"{len(missing)} sample(s) are not in the chain table (e.g. '{missing[0]}')", source)


def annotate_samples(manifest: dict, table: dict | None, source=None) -> bool:
    """Store each sample's chain-table row (:data:`CHAIN_FIELDS`) in its manifest entry (``table`` None: remove
    them, every sample is its own cluster). A sample the table does not list is an InputError. Returns whether any
    entry changed."""
    samples = manifest["samples"]
    if table is not None:
        check_table_lists(samples, table, source)
    changed = False
    for name, entry in samples.items():
        before = dict(entry)
        for key in CHAIN_FIELDS:
            entry.pop(key, None)
        if table is not None:
            entry.update({k: table[name][k] for k in CHAIN_FIELDS})
        changed |= entry != before
    return changed
