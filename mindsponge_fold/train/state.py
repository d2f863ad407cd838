"""Training checkpoints in the project's one checkpoint layout (:func:`mindsponge_fold.model.params.save_checkpoint`).

A training checkpoint ``<out>/checkpoints/step_<N>.ckpt`` holds

* the model weights under their Cell names (what ``run-features --params`` / ``predict`` load) and ``ema.<name>``
  (``--ema``);
* ``opt.*``: Adam's ``moment1.*`` / ``moment2.*``, ``beta1_power``, ``beta2_power``, ``global_step``;
* ``train.step`` (steps done), ``train.loss_scale`` / ``train.loss_scale_counter`` (loss scaler);
* ``data.epoch`` / ``data.index`` (batches of that epoch already consumed);
* ``rng.seed`` / ``rng.kernel_seed`` (every host draw is a function of ``(train.seed, step)``; the kernel seed is
  what MindSpore's random kernels (dropout) were seeded with in this segment of the run);
* ``meta.config`` (the resolved config as YAML) and ``meta.model``.

Writes are atomic (temporary file + rename); :func:`prune` keeps the newest ``keep`` step checkpoints and
:func:`remove_stale_temporaries` deletes the temporary files a killed write leaves behind.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mindsponge_fold.common.errors import InputError
from mindsponge_fold.model import params as P

CKPT_RE = re.compile(r"^step_(\d+)\.ckpt$")
# what mindsponge_fold.common.fileio.atomic_path names its temporary file for step_<N>.ckpt
TMP_CKPT_GLOB = ".step_*.ckpt.*.tmp.ckpt"
CORRUPT_SUFFIX = ".corrupt"
REQUIRED = ("train.step", "data.epoch", "data.index")


def checkpoint_dir(out_dir) -> Path:
    return Path(out_dir) / "checkpoints"


def checkpoint_path(out_dir, step: int) -> Path:
    return checkpoint_dir(out_dir) / f"step_{step:08d}.ckpt"


def list_checkpoints(out_dir) -> list[tuple[int, Path]]:
    d = checkpoint_dir(out_dir)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := CKPT_RE.match(p.name))]
    return sorted(found)


def latest_checkpoint(out_dir) -> Path | None:
    found = list_checkpoints(out_dir)
    return found[-1][1] if found else None


def prune(out_dir, keep: int) -> None:
    if keep <= 0:
        return
    for _, path in list_checkpoints(out_dir)[:-keep]:
        path.unlink(missing_ok=True)


def remove_stale_temporaries(out_dir, names=()) -> list[Path]:
    """Delete the temporary files of writes that were killed before their rename: ``checkpoints/.step_<N>.ckpt.*.tmp
    .ckpt`` and, for each of ``names`` (files of ``out_dir`` written atomically), ``.<name>.*.tmp*``. Returns them."""
    out = Path(out_dir)
    found = list(checkpoint_dir(out).glob(TMP_CKPT_GLOB)) if checkpoint_dir(out).is_dir() else []
    if out.is_dir():
        found += [p for name in names for p in out.glob(f".{name}.*.tmp*")]
    for path in found:
        path.unlink(missing_ok=True)
    return sorted(found)


def read_training_checkpoint(path) -> dict:
    """All entries of a training checkpoint; an InputError (one line) when it cannot be parsed (truncated,
    overwritten) or lacks the step / data position."""
    entries = P.read_checkpoint(path)
    missing = [n for n in REQUIRED if n not in entries]
    if missing:
        raise InputError(f"not a training checkpoint (no {missing[0]}); use --init-from for weights-only files", path)
    return entries


def set_aside(path) -> Path:
    """Rename an unreadable checkpoint to ``<name>.corrupt`` (kept for inspection, no longer listed, so neither a
    later resume nor :func:`prune`'s count of the newest checkpoints sees it)."""
    target = Path(str(path) + CORRUPT_SUFFIX)
    Path(path).replace(target)
    return target


def save_training_checkpoint(path, trainer, step: int, data_position: tuple[int, int], seeds: tuple[int, int],
                             meta: dict) -> Path:
    """Write weights, EMA, optimiser and loss-scale state, step, data position and seeds to ``path``."""
    import mindspore as ms
    ema = trainer.named_weights(ema=True)
    extra = {name: p.data for name, p in trainer.optimizer_state().items()}
    epoch, index = data_position
    extra.update({"train.step": np.asarray(step, np.int64), "data.epoch": np.asarray(epoch, np.int64),
                  "data.index": np.asarray(index, np.int64), "rng.seed": np.asarray(seeds[0], np.int64),
                  "rng.kernel_seed": np.asarray(seeds[1], np.int64)})
    extra = {k: v if isinstance(v, ms.Tensor) else ms.Tensor(v) for k, v in extra.items()}
    P.save_checkpoint(trainer.model, path, meta=meta, extra=extra, ema=ema)
    return Path(path)


def restore_training_checkpoint(path, trainer, entries: dict | None = None) -> dict:
    """Load everything :func:`save_training_checkpoint` wrote into ``trainer`` (``entries``: the file's entries when
    already read by :func:`read_training_checkpoint`); returns ``{"step", "epoch", "index", "seed", "kernel_seed",
    "meta": {...}}``. Strict on names and shapes; values are written in place
    (:func:`mindsponge_fold.train.step.assign`)."""
    from mindsponge_fold.train.step import assign
    entries = read_training_checkpoint(path) if entries is None else entries
    weights = {n: v for n, v in entries.items() if not isinstance(v, str) and not P._is_aux(n)}
    P.check_names(trainer.model, {P.official_name(n): np.shape(v) for n, v in weights.items()}, str(path))
    ema = {P.EMA_PREFIX + n: p for n, p in zip(trainer.relative_names(), trainer.ema)}
    targets = {**P.model_parameters(trainer.model), **ema, **trainer.optimizer_state()}
    missing = [n for n in targets if n not in entries]
    missing += [n for n in REQUIRED if n not in entries]
    if missing:
        raise InputError(f"not a training checkpoint of this model: {len(missing)} entr(y/ies) missing "
                         f"(first: {missing[0]}); use --init-from for weights-only files", path)
    for name, p in targets.items():
        value = np.asarray(entries[name])
        if value.size != int(np.prod(p.shape)):
            raise InputError(f"checkpoint entry {name} has shape {value.shape}, expected {tuple(p.shape)}", path)
        assign(p, value)
    meta = {k[len(P.META_PREFIX):]: v for k, v in entries.items() if isinstance(v, str)}
    return {"step": int(entries["train.step"]), "epoch": int(entries["data.epoch"]),
            "index": int(entries["data.index"]), "seed": int(entries.get("rng.seed", -1)),
            "kernel_seed": int(entries.get("rng.kernel_seed", -1)), "meta": meta}


def weight_arrays(path) -> dict:
    """Official-name arrays of an AlphaFold ``.npz`` or the model weights of one of our checkpoints."""
    if P.weights_format(path) == "npz":
        return P.load_npz_arrays(path)
    entries = P.read_checkpoint(path)
    return {P.official_name(k): v for k, v in entries.items() if not isinstance(v, str) and not P._is_aux(k)}


def init_weights(trainer, path) -> list[str]:
    """Start from weights only (AlphaFold ``.npz`` or one of our checkpoints): model and EMA, fresh optimiser.

    Heads the file lacks keep their fresh initialisation (e.g. the experimentally-resolved head, weight 0 in
    initial training, enters in fine-tuning: Table 4); every other name and shape must match. Returns the
    official names left at their initialisation."""
    from mindsponge_fold.train.step import assign
    arrays = weight_arrays(path)
    ours = {P.official_name(n): p for n, p in P.model_parameters(trainer.model).items()}
    fresh = sorted(k for k in ours if k not in arrays and "_head/" in k)
    shapes = {k: np.shape(v) for k, v in arrays.items()}
    shapes.update({k: tuple(ours[k].shape) for k in fresh})
    P.check_names(trainer.model, shapes, str(path))
    for name, p in ours.items():
        if name in arrays:
            assign(p, arrays[name])
    for s, p in zip(trainer.ema, trainer.params):
        assign(s, p.asnumpy())
    trainer.reset_optimizer()
    return fresh
