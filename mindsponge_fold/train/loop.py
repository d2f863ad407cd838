"""The training loop: data, steps, logging, checkpoints, resume, SIGTERM, periodic validation, curve plot.

``train(cfg, options)`` runs ``train.num_steps`` steps in total (a resumed run continues to the same target):

* data: :func:`mindsponge_fold.data.dataset.create_train_dataset`, one pipeline per epoch (its draw of samples,
  Suppl. 1.2.5, logged: a ``kind: "epoch"`` record and a stdout line), each rank its share; the position (epoch,
  batches consumed) is checkpointed and a resume skips the consumed batches of its epoch. With
  ``distillation_data`` each example comes from it with probability ``distillation_fraction``
  (:mod:`mindsponge_fold.train.sources`; the examples per source are logged, ``count/pdb`` /
  ``count/distillation``);
* steps: :class:`mindsponge_fold.train.step.TrainStep` (random recycles, loss scaling, per-example clipping, Adam,
  EMA, data-parallel averaging);
* logs (rank 0): a line per ``train.log_every`` steps on stdout (loss terms, loss scale, grad norm, LR, step time,
  samples/s), every step in ``<out>/train_log.jsonl``, a progress bar on stderr;
* checkpoints (rank 0): ``<out>/checkpoints/step_<N>.ckpt`` every ``train.checkpoint_every`` steps, at the end and
  on SIGTERM (all ranks agree on the step to stop at; ``mindsponge-fold train`` then exits with 143), the newest
  ``train.keep_checkpoints`` kept; temporary files of a write killed before its rename are removed at the start;
* resume (:func:`resolve_resume`): the newest checkpoint (an unreadable one is set aside with a warning and the
  previous one used), or a named file; the log's records after its step are dropped;
* validation (rank 0, ``train.eval_every`` > 0 and held-out data): lDDT-Calpha with the EMA weights
  (``train.eval_use_ema``), logged and plotted to ``<out>/training_curve.png``.

Host randomness (recycle counts) is a function of ``(train.seed, step)``, the dropout masks' of ``(seed, step,
example, iteration)`` and the data's of ``(seed, epoch, sample)``, so a resumed run repeats an uninterrupted one,
dropout included.
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import signal
import sys
import time
from pathlib import Path

import numpy as np

from mindsponge_fold.common.errors import InputError, warn
from mindsponge_fold.common.fileio import check_output_dir, write_text
from mindsponge_fold.train import curves, state
from mindsponge_fold.train.distributed import World, any_rank, setup


LATEST, AUTO = "latest", "auto"     # RunOptions.resume: the newest checkpoint (must exist) / the newest if any
OUTPUT_FILES = ("config.yaml", "train_log.jsonl", "training_curve.png")   # written atomically into out_dir


@dataclasses.dataclass
class RunOptions:
    data: str                                 # make-mindrecord output (training split)
    out_dir: str = "train_out"
    val_data: str | None = None               # make-mindrecord output (held-out split)
    resume: str | None = None                 # LATEST, AUTO or a checkpoint path: see resolve_resume
    init_from: str | None = None              # AlphaFold .npz or our .ckpt: weights only
    num_steps: int | None = None              # default train.num_steps
    device: str = "CPU"
    progress: bool = True
    num_workers: int = 2
    dump_rank_weights: bool = False           # every rank writes <out>/rank_<r>_final.npz (AlphaFold layout)
    dump_rank_gradients: bool = False         # every rank writes the first step's reduced gradient (see train())
    distillation_data: str | None = None      # make-mindrecord output of make-distillation-set examples
    distillation_fraction: float = 0.75       # P(an example is a distillation one) (Suppl. 1.3: 75 %)


def kernel_seed(seed: int, start_step: int, rank: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(start_step), int(rank), 0xD0]).generate_state(1)[0] % 2 ** 31)


def _warn(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def resolve_resume(resume, out_dir, is_main: bool = True, warn=_warn) -> tuple[Path, dict] | None:
    """The checkpoint to resume from and its entries, or None to start from step 0.

    ``resume``: None (start fresh), ``"latest"`` (the newest checkpoint in ``out_dir``; none there is an error: a
    mistyped ``--out`` must not restart silently), ``"auto"`` (the newest, or start fresh when there is none) or a
    checkpoint path (that file, no fallback). With ``latest`` / ``auto`` an unreadable newest checkpoint is set aside
    (renamed ``.corrupt`` by the main rank) with a warning and the previous one is tried."""
    if not resume:
        return None
    if resume not in (LATEST, AUTO):
        path = Path(resume)
        if not path.exists():
            raise InputError("no such checkpoint to resume from", path)
        return path, state.read_training_checkpoint(path)
    found = state.list_checkpoints(out_dir)
    where = state.checkpoint_dir(out_dir)
    if not found:
        if resume == AUTO:
            return None
        raise InputError(f"--resume: no checkpoint to resume from in {where} (check --out; --resume auto starts "
                         "from step 0 when there is none)")
    failures = []
    for _, path in reversed(found):
        try:
            return path, state.read_training_checkpoint(path)
        except InputError as e:
            failures.append(str(e))
            moved = ""
            if is_main:
                with contextlib.suppress(FileNotFoundError):
                    moved = f"; renamed to {state.set_aside(path).name}"
            warn(f"warning: {e}{moved}; trying the previous checkpoint")
    raise InputError(f"--resume: none of the {len(found)} checkpoint(s) in {where} is readable "
                     f"(newest: {failures[0]})")


def batches(data, cfg, world: World, epoch: int, index: int, num_workers: int, stream: int = 0, on_epoch=None):
    """Yield ``(epoch, batches consumed in that epoch, batch)`` from position (epoch, index), epoch after epoch.
    ``on_epoch(epoch, summary)`` is called with each epoch's draw summary."""
    from mindsponge_fold.data.dataset import create_train_dataset
    rank, size = (world.rank, world.size) if world.distributed else (None, None)
    while True:
        # reported when an epoch starts (a resume inside an epoch does not repeat it)
        report = None if on_epoch is None or index else (lambda summary, e=epoch: on_epoch(e, summary))
        pipeline = create_train_dataset(data, cfg, epoch=epoch, rank=rank, group_size=size,
                                        num_workers=num_workers, skip_batches=index, stream=stream,
                                        on_epoch=report)
        iterator = pipeline.create_dict_iterator(output_numpy=True, num_epochs=1)
        got = 0
        try:
            for batch in iterator:
                got += 1
                index += 1
                yield epoch, index, batch
        finally:
            with contextlib.suppress(Exception):
                iterator.stop()
        if got == 0 and index == 0:
            raise InputError(f"no training batches: fewer samples than batch_size x ranks "
                             f"({cfg.train.batch_size} x {world.size})", data)
        epoch, index = epoch + 1, 0


class _StopFlag:
    """SIGTERM -> finish the current step, checkpoint, stop."""

    def __init__(self):
        self.set = False
        self.previous = None

    def __enter__(self):
        with contextlib.suppress(ValueError):       # not the main thread: no handler
            self.previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def _handle(self, signum, frame):
        self.set = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)


def _save_official(path, arrays: dict) -> Path:
    """Model-relative name -> array, written as an ``.npz`` under AlphaFold's (official) names."""
    from mindsponge_fold.common.fileio import save_npz
    from mindsponge_fold.model.params import official_name
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_npz(path, {official_name(n): v for n, v in arrays.items()}, compressed=False)
    return Path(path)


def dump_weights(trainer, path) -> Path:
    """This process's current weights as an AlphaFold-layout ``.npz`` (official names)."""
    return _save_official(path, trainer.named_weights())


def dump_gradients(trainer, batch: dict, step: int, path) -> Path:
    """The gradient this process's step ``step`` applies (after the all-reduce mean), AlphaFold-layout names."""
    return _save_official(path, trainer.reduced_gradients(batch, step))


def format_line(record: dict, num_steps: int) -> str:
    terms = " ".join(f"{k.split('/')[-1]} {record[k]:.4g}" for k in record
                     if k.startswith("loss/") and k != "loss/total")
    flag = " SKIPPED(overflow)" if record["skipped"] else ""
    return (f"step {record['step']}/{num_steps} loss {record['loss/total']:.4f} (scaled {record['loss']:.4g}; "
            f"{terms}) scale {record['loss_scale']:g} gnorm {record['grad_norm']:.4g} lr {record['lr']:.3g} "
            f"recycles {record['num_recycle']} {record['step_time_s']:.2f}s/step "
            f"{record['samples_per_s']:.3g} samples/s{flag}"
            + (f" pdb {record['count/pdb']} distillation {record['count/distillation']}"
               if "count/pdb" in record else ""))


def check_data(options: RunOptions, cfg, is_main: bool = True) -> None:
    """The training (and validation) data are finished make-mindrecord outputs with labelled samples and readable
    shards; a --val-data that will not be used (train.eval_every 0) gets a warning."""
    from mindsponge_fold.data.dataset import resolve_files
    if options.val_data and int(cfg.train.eval_every) <= 0 and is_main:
        warn(f"--val-data is not used: train.eval_every is {cfg.train.eval_every} (set it > 0 to validate)",
             options.val_data)
    resolve_files(options.data)
    if options.distillation_data:
        if not 0.0 <= float(options.distillation_fraction) <= 1.0:
            raise InputError(f"--distillation-fraction must be in [0, 1], got {options.distillation_fraction}")
        resolve_files(options.distillation_data)
    if options.val_data and int(cfg.train.eval_every) > 0:
        resolve_files(options.val_data)


def train(cfg, options: RunOptions, trainer=None, world: World | None = None) -> dict:
    """Run (or continue) training; returns a summary dict (final step, stop reason, last records, checkpoint)."""
    import mindspore as ms
    from mindsponge_fold import __version__
    from mindsponge_fold.common.config import check_precision, dump_config
    from mindsponge_fold.train.step import TrainStep

    world = world or setup(options.device, cfg.runtime.jit_level)
    check_precision(cfg, options.device)
    tc = cfg.train
    num_steps = int(options.num_steps if options.num_steps is not None else tc.num_steps)
    resolved = copy.deepcopy(cfg)                 # what config.yaml and checkpoints record: the run's own length
    resolved.train.num_steps = num_steps
    config_text = dump_config(resolved)
    out = Path(options.out_dir)
    check_output_dir(out, "--out directory")
    log_path, png_path = out / "train_log.jsonl", out / "training_curve.png"
    if world.is_main:
        stale = state.remove_stale_temporaries(out, OUTPUT_FILES)
        if stale:
            print(f"removed {len(stale)} temporary file(s) of an interrupted write: "
                  f"{', '.join(p.name for p in stale)}", flush=True)
    found = resolve_resume(options.resume, out, is_main=world.is_main)
    resume, entries = found if found is not None else (None, None)
    del found
    if resume is not None and options.init_from:
        raise InputError("--resume and --init-from exclude each other (a checkpoint carries its own weights)")
    check_data(options, cfg, world.is_main)          # before anything is built, compiled or written
    start_step = int(entries["train.step"]) if resume is not None else 0
    if world.is_main and options.resume:
        print(f"resuming from {resume} (step {start_step} of {num_steps})" if resume is not None
              else f"--resume {AUTO}: no checkpoint in {state.checkpoint_dir(out)}; starting from step 0", flush=True)
    seeds = (int(tc.seed), kernel_seed(tc.seed, start_step, world.rank))
    ms.set_seed(seeds[1])
    trainer = trainer or TrainStep(cfg, reducer_degree=world.size if world.distributed else None, rank=world.rank)
    position = (0, 0)
    if resume is not None:
        restored = state.restore_training_checkpoint(resume, trainer, entries)
        del entries
        position = (restored["epoch"], restored["index"])
    elif options.init_from:
        fresh = state.init_weights(trainer, options.init_from)
        if fresh and world.is_main:
            print(f"init-from {options.init_from}: {len(fresh)} head parameter(s) not in the file keep their "
                  f"initialisation (first: {fresh[0]})", file=sys.stderr)
    if world.is_main:
        out.mkdir(parents=True, exist_ok=True)
        write_text(out / "config.yaml", config_text)
        curves.truncate_log(log_path, start_step)
    validator = None
    if options.val_data and tc.eval_every > 0 and world.is_main:
        from mindsponge_fold.train.validate import Validator
        validator = Validator.from_mindrecord(cfg, options.val_data, seed=int(tc.seed))
    meta = {"config": config_text, "model": cfg.name, "version": __version__, "kind": "training"}

    def save(step, pos):
        if not world.is_main:
            return None
        path = state.save_training_checkpoint(state.checkpoint_path(out, step), trainer, step, pos, seeds, meta)
        state.prune(out, int(tc.keep_checkpoints))
        return path

    def validate(step):
        weights = trainer.named_weights(ema=bool(tc.eval_use_ema))
        result = {"kind": "val", "step": step, **validator.evaluate(weights)}
        curves.append_record(log_path, result)
        curves.plot_curves(log_path, png_path, title=f"{cfg.name}: {out.name}")
        return result

    from tqdm import tqdm
    step, stopped, last, last_val, ckpt = start_step, False, None, None, None
    bar = tqdm(total=num_steps, initial=start_step, disable=not (options.progress and world.is_main),
               unit="step", dynamic_ncols=True, file=sys.stderr)
    with _StopFlag() as stop, bar:
        draws = []                       # epoch draw summaries not yet logged

        def on_epoch(source):
            def report(epoch, summary):
                draws.append({"source": source, "epoch": epoch, **summary})
                if world.is_main:
                    bar.write(f"epoch {epoch} ({source}): {summary['draws']} draws of {summary['samples']} "
                              f"distinct samples from {summary['clusters']} clusters "
                              f"({summary['distillation']} distillation)")
            return report

        mixed = None
        if options.distillation_data:
            from mindsponge_fold.train.sources import MixedBatches

            def example_stream(path, one, stream, e, i):
                return batches(path, one, world, e, i, options.num_workers, stream,
                               on_epoch(("pdb", "distillation")[stream]))
            data = mixed = MixedBatches(cfg, options.data, options.distillation_data, options.distillation_fraction,
                                        world.rank, world.size, start_step, example_stream)
        else:
            data = batches(options.data, cfg, world, *position, options.num_workers, on_epoch=on_epoch("pdb"))
        while step < num_steps:
            if mixed is not None:
                sources, batch = next(data)
                epoch, index = 0, 0
            else:
                epoch, index, batch = next(data)
            if options.dump_rank_gradients and step == start_step:
                dump_gradients(trainer, batch, step, out / f"rank_{world.rank}_step_{step + 1}_gradients.npz")
            t0 = time.perf_counter()
            metrics = trainer.step(batch, step)
            dt = time.perf_counter() - t0
            step += 1
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in np.asarray(batch["name"]).ravel()]
            last = {"kind": "train", "step": step, "epoch": epoch, **metrics, "step_time_s": dt,
                    "samples_per_s": len(names) * world.size / dt, "names": names}
            if mixed is not None:
                last["sources"] = sources
                last.update({f"count/{k}": v for k, v in mixed.counts.items()})
            if draws:
                last["epoch_draws"] = draws[:]
                draws.clear()
            stopped = any_rank(stop.set, world)
            if world.is_main:
                curves.append_record(log_path, last)
                bar.update(1)
                bar.set_postfix(loss=f"{last['loss/total']:.3f}", lr=f"{last['lr']:.2g}")
                if tc.log_every and (step % tc.log_every == 0 or step == num_steps):
                    bar.write(format_line(last, num_steps))
            if step % tc.checkpoint_every == 0 or step == num_steps or stopped:
                ckpt = save(step, (epoch, index)) or ckpt
            if validator is not None and (step % tc.eval_every == 0 or step == num_steps):
                last_val = validate(step)
                bar.write(f"step {step}: validation lDDT-Ca {last_val['val/lddt_ca']:.4f}")
            if stopped:
                bar.write(f"stopped by SIGTERM after step {step}; checkpoint {ckpt}")
                break
        data.close()
    if world.is_main and log_path.exists():
        curves.plot_curves(log_path, png_path, title=f"{cfg.name}: {out.name}")
    if options.dump_rank_weights:
        dump_weights(trainer, out / f"rank_{world.rank}_final.npz")
    return {"step": step, "stopped": stopped, "last": last, "val": last_val, "checkpoint": ckpt,
            "world": dataclasses.asdict(world)}
