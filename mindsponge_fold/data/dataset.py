"""Training data loader: MindRecord shards (from ``make-mindrecord``) -> batches of processed training features.

A ``mindspore.dataset.MindDataset`` pipeline: the rank's share of the epoch's draw of samples (below),
per-sample feature processing in parallel workers (:func:`mindsponge_fold.data.transforms.run_pipeline` in
training mode: block deletion, template subsampling, crop, a fresh MSA sample per recycling iteration, loss targets,
padding to the crop size), then batching.

Every output column is a numpy array keyed by its AlphaFold feature name, shaped ``(batch, R, ...)`` with
``R = train.max_recycle + 1`` recycling iterations (slice ``[:, r]`` is the batch of iteration ``r``), plus
``name`` (batch,) with the sample names.

Which samples an epoch visits (:mod:`mindsponge_fold.data.sampling`, Suppl. 1.2.5): ``data.train.sampling`` =
``weighted`` (the paper's cluster-size and length weights, with replacement) or ``uniform`` (each sample once); the
draw is a function of (seed, epoch), computed alike on every rank, which takes its share of it; the row indices go to
MindDataset through a ``SubsetSampler`` (``shuffle=False``: every sample once, in row order).

Determinism: each sample's random draws come from ``sample_seed(seed, epoch, name)``, so results do not depend on
worker count or scheduling.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data import mindrecord as mr
from mindsponge_fold.data import sampling
from mindsponge_fold.data.rng import NumpyRNG, sample_seed
from mindsponge_fold.data.transforms import output_feature_names, run_pipeline, settings_from_config


class TrainSampleProcessor:
    """Picklable map function: one MindRecord row (columns in ``mr.record_columns()`` order) -> the sample name
    and its processed training features in ``self.names`` order."""

    def __init__(self, cfg, seed: int, epoch: int):
        self.settings = settings_from_config(cfg, "train")
        self.names = output_feature_names(self.settings)
        self.columns = mr.record_columns()
        self.seed, self.epoch = int(seed), int(epoch)

    def process(self, row: dict) -> tuple[str, dict]:
        name, raw = mr.decode_record(row)
        rng = NumpyRNG(sample_seed(self.seed, self.epoch, name))
        return name, run_pipeline(raw, self.settings, rng, source=f"record '{name}'")

    def __call__(self, *columns):
        name, out = self.process(dict(zip(self.columns, columns)))
        return (np.array(name),) + tuple(out[k] for k in self.names)


def resolve_files(data) -> list[str]:
    """Shard files from a ``make-mindrecord --out`` path (or its manifest), or an explicit list of files.

    With a path, every sample must have labels (training needs atom coordinates)."""
    if isinstance(data, (str, Path)):
        files = mr.dataset_files(data)
        manifest = mr.load_manifest(data)
        if not manifest["samples"] or not files:
            raise InputError("no samples in this dataset (every one was skipped at conversion, e.g. longer than "
                             "--max-seq-length)", mr.manifest_path(data))
        unlabeled = [n for n, e in manifest["samples"].items() if not e.get("has_labels")]
        if unlabeled:
            raise InputError(f"{len(unlabeled)} sample(s) have no labels (e.g. '{unlabeled[0]}'); reconvert with "
                             f"--mmcif-dir or drop them", mr.manifest_path(data))
        mr.check_shard_files(files)
        return files
    files = [str(f) for f in data]
    if not files:
        raise ValueError("no MindRecord files given")
    return files


def distributed_rank() -> tuple[int | None, int | None]:
    """(rank, group size) when MindSpore's communication is initialised, else (None, None)."""
    try:
        from mindspore.communication import get_group_size, get_rank
        size = get_group_size()
        return (get_rank(), size) if size > 1 else (None, None)
    except Exception:  # noqa: BLE001 - not initialised / no backend
        return None, None


def epoch_indices(data, cfg, seed: int, epoch: int, rank: int | None = None, group_size: int | None = None,
                  shuffle: bool = True, sampling_mode: str | None = None, stream: int = 0) -> tuple[list, dict]:
    """This rank's MindDataset row indices for one epoch of a make-mindrecord dataset, and what the whole draw chose
    (:func:`sampling.draw_summary`). ``sampling_mode`` defaults to ``data.train.sampling``; ``shuffle=False``: every
    row once, in order."""
    manifest = mr.load_manifest(data)
    names = sampling.manifest_rows(manifest)
    if not shuffle:
        draw = np.arange(len(names))
    else:
        mode = sampling_mode or cfg.data.train.sampling
        draw = sampling.epoch_draw(sampling.manifest_weights(manifest, names), seed, epoch, mode, stream)
    return sampling.rank_share(draw, rank, group_size).tolist(), sampling.draw_summary(names, draw, manifest)


def create_train_dataset(data, cfg, batch_size: int | None = None, seed: int | None = None, epoch: int = 0,
                         rank: int | None = None, group_size: int | None = None, shuffle: bool = True,
                         num_workers: int = 2, python_multiprocessing: bool = False, skip_batches: int = 0,
                         sampling_mode: str | None = None, stream: int = 0, on_epoch=None):
    """The training ``MindDataset`` pipeline for one epoch (build a new one per epoch: ``epoch`` changes the
    draw and every random draw). ``rank``/``group_size`` default to MindSpore's communication group.
    ``skip_batches``: start after that many batches of the epoch (resuming); the skipped samples are not read.
    ``data``: a make-mindrecord ``--out`` path (sampled as in the module docstring; ``on_epoch(summary)`` is called
    with the draw's summary) or a list of shard files (MindDataset's own shuffle and sharding)."""
    import mindspore.dataset as ds

    batch_size = cfg.train.batch_size if batch_size is None else batch_size
    seed = cfg.train.seed if seed is None else seed
    if rank is None and group_size is None:
        rank, group_size = distributed_rank()
    processor = TrainSampleProcessor(cfg, seed, epoch)
    files = resolve_files(data)
    if isinstance(data, (str, Path)):
        indices, summary = epoch_indices(data, cfg, seed, epoch, rank, group_size, shuffle, sampling_mode, stream)
        if on_epoch is not None:
            on_epoch(summary)
        indices = indices[int(skip_batches) * int(batch_size):]
        data = ds.MindDataset(files, columns_list=processor.columns, num_parallel_workers=1,
                              sampler=ds.SubsetSampler(indices or [0]))
        if not indices:
            data = data.skip(1)         # the epoch is used up: an empty pipeline
    else:
        ds.config.set_seed(int(sample_seed(seed, "shuffle", epoch)[0]) % (2 ** 31))
        data = ds.MindDataset(files, columns_list=processor.columns, shuffle=shuffle,
                              num_shards=group_size, shard_id=rank, num_parallel_workers=1)
        if skip_batches:
            data = data.skip(int(skip_batches) * int(batch_size))
    data = data.map(operations=processor, input_columns=processor.columns,
                    output_columns=["name", *processor.names], num_parallel_workers=num_workers,
                    python_multiprocessing=python_multiprocessing)
    return data.batch(batch_size, drop_remainder=True)


def iterate_batches(data, cfg, num_epochs: int | None = None, start_epoch: int = 0, **kwargs):
    """Yield training batches (dicts of numpy arrays) epoch after epoch (forever when ``num_epochs`` is None)."""
    epoch = start_epoch
    while num_epochs is None or epoch < start_epoch + num_epochs:
        pipeline = create_train_dataset(data, cfg, epoch=epoch, **kwargs)
        yield from pipeline.create_dict_iterator(output_numpy=True, num_epochs=1)
        epoch += 1
