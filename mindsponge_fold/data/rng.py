"""Randomness of the feature pipeline behind one small interface.

Every random decision of feature processing is a *named draw* on a :class:`FeatureRNG` (``rng.shuffle("msa_shuffle",
values)``, ``rng.uniform("bert_uniform", shape)`` ...). Two implementations:

* :class:`NumpyRNG`: a seeded ``numpy.random.Generator``; the same seed gives the same features run to run, on any
  worker, whatever the order samples are processed in (a sample's seed is derived from the run seed, the epoch and
  the sample's name with :func:`sample_seed`).
* :class:`TraceRNG`: replays the draws recorded by the AlphaFold reference (``rng_trace.npz`` of the fixtures, keys
  ``batch<r>/<name>``), so the reference's processed features can be reproduced exactly. Draws the trace does not
  hold go to an optional fallback generator (or raise).

Each recycling iteration (one "batch" of AlphaFold's per-iteration MSA resampling) draws from its own child stream
``rng.for_batch(r)``; per-sample draws (crop, template subsampling, FAPE clamping) use the root stream.
"""
from __future__ import annotations

import hashlib

import numpy as np

from mindsponge_fold.common.errors import InputError


class FeatureRNG:
    """Named random draws. Subclasses implement the five primitives below."""

    def for_batch(self, index: int) -> "FeatureRNG":
        """Independent stream for recycling iteration / ensemble batch ``index``."""
        raise NotImplementedError

    def shuffle(self, name: str, values: np.ndarray) -> np.ndarray:
        """A random permutation of ``values`` (1-D)."""
        raise NotImplementedError

    def uniform(self, name: str, shape) -> np.ndarray:
        """float32 uniform draws in [0, 1)."""
        raise NotImplementedError

    def categorical(self, name: str, probs: np.ndarray) -> np.ndarray:
        """One int32 class index per row of ``probs`` (last axis = classes; rows need not be normalised)."""
        raise NotImplementedError

    def integers(self, name: str, low: int, high: int, size=None) -> np.ndarray:
        """Uniform int64 integers in [low, high)."""
        raise NotImplementedError


def sample_seed(seed: int, *keys) -> list:
    """Entropy for a sample's generator from the run seed and any keys (epoch, sample name...), stable across runs."""
    h = hashlib.sha256(repr((int(seed),) + tuple(str(k) for k in keys)).encode()).digest()
    return [int.from_bytes(h[i:i + 4], "little") for i in range(0, 16, 4)]


class NumpyRNG(FeatureRNG):
    """Seeded numpy generator. ``seed`` may be an int or a list of ints (e.g. from :func:`sample_seed`)."""

    def __init__(self, seed=0, _spawn_key: tuple = ()):
        self._entropy = seed
        self._spawn_key = tuple(_spawn_key)
        self._gen = np.random.Generator(np.random.PCG64(
            np.random.SeedSequence(seed, spawn_key=self._spawn_key)))

    def for_batch(self, index: int) -> "NumpyRNG":
        return NumpyRNG(self._entropy, self._spawn_key + (int(index),))

    def shuffle(self, name, values):
        return self._gen.permutation(np.asarray(values))

    def uniform(self, name, shape):
        return self._gen.random(tuple(shape), dtype=np.float32)

    def categorical(self, name, probs):
        probs = np.asarray(probs, dtype=np.float64)
        cdf = np.cumsum(probs, axis=-1)
        u = self._gen.random(probs.shape[:-1]) * cdf[..., -1]
        idx = (u[..., None] >= cdf).sum(-1)
        return np.minimum(idx, probs.shape[-1] - 1).astype(np.int32)

    def integers(self, name, low, high, size=None):
        return self._gen.integers(low, high, size=size)


class TraceRNG(FeatureRNG):
    """Replay of a recorded trace: ``arrays["batch<r>/<name>"]`` answers draw ``name`` of batch ``r``.

    ``shuffle`` accepts a recorded permutation of the requested values or, for ``msa_shuffle``, the recorded
    ``msa_index_order`` (``[0] + shuffle``). Draws missing from the trace go to ``fallback`` (a FeatureRNG) or raise.
    """

    # Alternative recordings of a draw: sample_msa's shuffle is also stored as msa_index_order = [0] + msa_shuffle.
    _ALIASES = {"msa_shuffle": ("msa_shuffle", "msa_index_order")}

    def __init__(self, arrays: dict, fallback: FeatureRNG | None = None, batch: int | None = None, source=None):
        self._arrays = dict(arrays)
        self._fallback = fallback
        self._batch = batch
        self._source = source

    @classmethod
    def from_file(cls, path, fallback: FeatureRNG | None = None) -> "TraceRNG":
        """Load ``rng_trace.npz``. Draws it does not record (the reference's ``random_crop_to_size_seed``, training
        draws) come from ``fallback``, by default ``NumpyRNG(0)``."""
        fallback = NumpyRNG(0) if fallback is None else fallback
        try:
            with np.load(path) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read RNG trace ({e})", path) from None
        return cls(arrays, fallback, source=str(path))

    def for_batch(self, index: int) -> "TraceRNG":
        fb = self._fallback.for_batch(index) if self._fallback is not None else None
        return TraceRNG(self._arrays, fb, int(index), self._source)

    def _lookup(self, name):
        for key in self._ALIASES.get(name, (name,)):
            full = key if self._batch is None else f"batch{self._batch}/{key}"
            if full in self._arrays:
                return key, np.asarray(self._arrays[full])
        return None, None

    def _missing(self, name):
        if self._fallback is None:
            where = "root stream" if self._batch is None else f"batch {self._batch}"
            raise InputError(f"RNG trace has no draw '{name}' for {where}", self._source)
        return self._fallback

    def _check_shape(self, name, got, shape):
        if tuple(got.shape) != tuple(shape):
            raise InputError(f"RNG trace draw '{name}' has shape {got.shape}, the pipeline needs {tuple(shape)}",
                             self._source)

    def shuffle(self, name, values):
        values = np.asarray(values)
        key, rec = self._lookup(name)
        if rec is None:
            return self._missing(name).shuffle(name, values)
        if key == "msa_index_order":          # recorded as [0] + shuffle(1..N-1)
            rec = rec[1:]
        self._check_shape(name, rec, values.shape)
        if not np.array_equal(np.sort(rec), np.sort(values)):
            raise InputError(f"RNG trace draw '{name}' is not a permutation of the values being shuffled",
                             self._source)
        return rec.astype(values.dtype, copy=False)

    def uniform(self, name, shape):
        _, rec = self._lookup(name)
        if rec is None:
            return self._missing(name).uniform(name, shape)
        self._check_shape(name, rec, shape)
        return rec.astype(np.float32, copy=False)

    def categorical(self, name, probs):
        _, rec = self._lookup(name)
        if rec is None:
            return self._missing(name).categorical(name, probs)
        self._check_shape(name, rec, np.shape(probs)[:-1])
        return rec.astype(np.int32, copy=False)

    def integers(self, name, low, high, size=None):
        _, rec = self._lookup(name)
        if rec is None:
            return self._missing(name).integers(name, low, high, size)
        return rec
