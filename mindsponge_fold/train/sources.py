"""Training on two data sources: PDB chains and self-distillation examples (Suppl. 1.3), mixed per example.

Each example slot of each step draws its source: distillation with probability ``fraction`` (AlphaFold: 75 %),
else PDB. The draw of (step, rank, slot) is a function of ``(seed, step, rank)`` only, so

* every rank (and the log on rank 0) knows every rank's choices without communication: the counts per source
  logged are global;
* a resumed run recomputes how many examples each source gave before its step and continues each source's epoch
  draw (:mod:`mindsponge_fold.data.sampling`) from there; the checkpoint needs no extra position.

Each source is read one example at a time (its own seeded epoch draws, ``stream`` 0 = PDB, 1 = distillation) and a
step's examples are stacked into the ``(batch, R, ...)`` batch the training step takes.
"""
from __future__ import annotations

import contextlib
import copy

import numpy as np

from mindsponge_fold.common.errors import InputError

PDB, DISTILLATION = "pdb", "distillation"
SOURCES = (PDB, DISTILLATION)
_CHOICE_TAG = 0xD157


def source_choices(seed: int, step: int, rank: int, batch_size: int, fraction: float) -> np.ndarray:
    """Per example slot of (step, rank): True = a distillation example."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) % 2 ** 32, int(step), int(rank), _CHOICE_TAG]))
    return rng.random(int(batch_size)) < float(fraction)


def consumed_before(seed: int, step: int, rank: int, batch_size: int, fraction: float) -> tuple[int, int]:
    """(PDB, distillation) examples rank ``rank`` read in steps ``0 .. step - 1``."""
    distill = sum(int(source_choices(seed, s, rank, batch_size, fraction).sum()) for s in range(int(step)))
    return int(step) * int(batch_size) - distill, distill


def global_counts(seed: int, step: int, size: int, batch_size: int, fraction: float) -> dict:
    """Examples per source over all ranks in steps ``0 .. step - 1``."""
    pdb = distill = 0
    for r in range(max(1, int(size))):
        p, d = consumed_before(seed, step, r, batch_size, fraction)
        pdb, distill = pdb + p, distill + d
    return {PDB: pdb, DISTILLATION: distill}


def per_rank_epoch(data, size: int) -> int:
    """Examples per rank in one epoch of a make-mindrecord dataset (the draw padded to a multiple of ``size``)."""
    from mindsponge_fold.data import mindrecord as mr
    n = len(mr.load_manifest(data)["samples"])
    return -(-n // max(1, int(size)))


class MixedBatches:
    """Iterator of ``(sources, batch)`` per step from ``start_step`` on: ``sources`` lists each example's source;
    ``counts`` = examples per source over all ranks up to the last step returned.

    ``example_stream(data, cfg, stream, epoch, index)`` yields ``(epoch, index, batch of one example)`` from that
    position, epoch after epoch (:func:`mindsponge_fold.train.loop.batches` with batch size 1)."""

    def __init__(self, cfg, pdb_data, distillation_data, fraction: float, rank: int, size: int, start_step: int,
                 example_stream):
        if not 0.0 <= float(fraction) <= 1.0:
            raise InputError(f"--distillation-fraction must be in [0, 1], got {fraction}")
        self.seed, self.rank, self.fraction = int(cfg.train.seed), int(rank), float(fraction)
        self.batch_size, self.step = int(cfg.train.batch_size), int(start_step)
        one = copy.deepcopy(cfg)
        one.train.batch_size = 1
        self.size = max(1, int(size))
        self.counts = global_counts(self.seed, start_step, self.size, self.batch_size, fraction)
        consumed = consumed_before(self.seed, start_step, rank, self.batch_size, fraction)
        self.streams = []
        for stream, (data, done) in enumerate(zip((pdb_data, distillation_data), consumed)):
            per_epoch = per_rank_epoch(data, size)
            self.streams.append(example_stream(data, one, stream, done // per_epoch, done % per_epoch))

    def __iter__(self):
        return self

    def __next__(self) -> tuple[list, dict]:
        choices = source_choices(self.seed, self.step, self.rank, self.batch_size, self.fraction)
        examples = [next(self.streams[int(c)])[2] for c in choices]
        for r in range(self.size):           # every rank's choices: the counts are global
            d = int(source_choices(self.seed, self.step, r, self.batch_size, self.fraction).sum())
            self.counts[DISTILLATION] += d
            self.counts[PDB] += self.batch_size - d
        self.step += 1
        batch = {k: np.concatenate([e[k] for e in examples]) for k in examples[0]}
        return [SOURCES[int(c)] for c in choices], batch

    def close(self) -> None:
        for s in self.streams:
            with contextlib.suppress(Exception):
                s.close()
