#!/usr/bin/env python
"""The paper-size training step, ours and AlphaFold's, side by side on one machine: time, peak memory, profile.

Per crop size, in this order and one at a time (each in its own guarded subprocess, peak RSS per process):

1. **ours**: the ``train_initial`` preset (model_1_ptm: 48 Evoformer + 4 extra-MSA + 2 template blocks at full
   widths; Table 4 initial training: 128 MSA clusters, 1024 extra sequences, 4 templates; dropout on; fp32;
   ``use_remat`` true = the host-driven recomputation on CPU) with ``data.train.crop_size`` set and no recycling
   before the gradient iteration (``train.max_recycle=0``); one batch of ``--sample`` (raw features .npz with ground
   truth) through the real data path (MindRecord -> training pipeline); ``--steps`` optimisation steps of
   :class:`mindsponge_fold.train.step.TrainStep` (gradient + clip + Adam + EMA; the first compiles). Per segment of
   the gradient iteration (embedding, template stack, extra-MSA stack, Evoformer forward, heads + structure module +
   loss, each stack's recomputation + backward) the time of the last step. Before stepping it exports its initial
   weights (AlphaFold layout) and the batch (AlphaFold feature names, ground truth included).
2. **alphafold**: ``scripts/bench_af_train_reference.py`` in the AlphaFold venv (``--af-venv``): ``jax.value_and_grad``
   of ``loss/total`` of AlphaFold's own ``AlphaFoldIteration`` (training mode, dropout on, its ``use_remat``, fp32) on
   the same batch with the same weights and the same heads (experimentally-resolved and violation losses off, as
   Table 4 initial training): the reference's gradient only, no optimiser update.
3. **alphafold_adam** (when listed in ``--sides``): the same plus clipping, Adam and the EMA of the weights written in
   jax (``--optimizer`` of the reference script): the same work as our step, three more weight-sized states.
4. **ours_grad** (when listed): our side's gradient alone (``TrainStep(with_optimizer=False)``: the same gradient
   pass, unscaling and clipping, no Adam moments, EMA or update): the same work as side 2.

    python scripts/bench_train.py [--crops 64 128] [--sample RAW.npz] [--steps 2] [--af-venv /work/afvenv]
        [--sides ours alphafold alphafold_adam] [--mem-limit 22] [--timeout 3600] [--set KEY=VALUE ...]
        [--graph-memory] [--out benchmarks/results/bench_train.json]

``--graph-memory`` (our sides): each compiled graph of the gradient (block forward / vector-Jacobian graphs, the
tail's, the embedding's, ...) is compiled on its own before its first call; the JSON records per graph the resident
memory its compile added, the memory its first run added, and its compile time. Our side also prints each segment
of the gradient to stderr as it ends, so a run killed at ``--mem-limit`` shows how far it got.

``--sample`` defaults to the reference fixture's 2crb chain A (97 residues). The published JSON uses 5kc1 chain A
(226 residues, 150 MSA rows, 4 templates from chains B-E of the same entry), built with
``mindsponge-fold make-features --fasta 5kc1_A.fasta --alignments-dir
../shared/data/openfold_testdata/alignments/5kc1_A --template ../shared/data/openfold_testdata/mmcifs/5kc1.cif:B``
(likewise C, D, E) ``--ground-truth ../shared/data/openfold_testdata/mmcifs/5kc1.cif:A --out 5kc1_A.npz``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402
from bench_af_compare import AF_FP32  # noqa: E402

HERE = Path(__file__).resolve().parent
FIXTURE = Path(os.environ.get("MSF_SHARED", bc.REPO.parent / "shared")) / "fixtures" / "reference" / "raw_features.npz"
# Table 4 initial training on the AlphaFold side: the heads our train_initial drops or re-weights
AF_TRAIN_INITIAL = ["model.heads.experimentally_resolved.weight=0", "model.heads.predicted_lddt.weight=0.01",
                    "model.heads.predicted_aligned_error.weight=0.1",
                    "model.heads.structure_module.structural_violation_loss_weight=0"]


def training_batch(cfg, sample: Path, tmp: Path) -> dict:
    """One training batch (B=1) of ``sample`` through the real data path: MindRecord -> training pipeline."""
    import numpy as np

    from mindsponge_fold.data import mindrecord as mr
    from mindsponge_fold.data.dataset import create_train_dataset
    (tmp / "in").mkdir()
    with np.load(sample) as f:
        np.savez(tmp / "in" / f"{sample.stem}.npz", **{k: f[k] for k in f.files})
    mr.convert(tmp / "in", tmp / "b.mindrecord", num_shards=1, progress=False)
    pipeline = create_train_dataset(tmp / "b.mindrecord", cfg, batch_size=1, shuffle=False, num_workers=1)
    return next(pipeline.create_dict_iterator(output_numpy=True, num_epochs=1))


def _write_batch(preset: str, overrides: list, sample: str, out: str) -> None:
    """(spawned process) the training batch to ``out``: the data pipeline's memory stays out of the measured one."""
    import numpy as np

    from mindsponge_fold.common.config import load_config
    cfg = load_config(preset, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        batch = training_batch(cfg, Path(sample), Path(tmp))
    np.savez(out, **{k: np.asarray(v) for k, v in batch.items() if np.asarray(v).dtype != object})


def make_batch(preset: str, overrides: list, sample: str) -> dict:
    import multiprocessing

    import numpy as np
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "batch.npz")
        proc = multiprocessing.get_context("spawn").Process(target=_write_batch, args=(preset, overrides, sample, out))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"building the training batch failed (exit {proc.exitcode})")
        with np.load(out) as f:
            return {k: f[k] for k in f.files}


def export_for_alphafold(trainer, batch: dict, work: Path) -> None:
    """Our initial weights in AlphaFold's layout and example 0 / iteration 0 of the batch under AlphaFold's names."""
    import numpy as np

    from mindsponge_fold.data import feature_shapes as fs
    from mindsponge_fold.model.params import export_alphafold_params
    arrays = {k: np.asarray(v, np.float32) for k, v in export_alphafold_params(trainer.model).items()}
    np.savez(work / "params.npz", **arrays)
    names = set(fs.PROCESSED_FEATURES) | set(fs.TARGET_FEATURES)
    np.savez(work / "batch.npz", **{k: np.asarray(v[0, 0]) for k, v in batch.items()
                                    if k in names and np.asarray(v).dtype.kind in "biuf"})


class _LiveProfile(dict):
    """The segment profile, also printed to stderr as each segment ends (step, segment, peak RSS): a run killed at
    the memory guard then shows in its ``stderr_tail`` how far it got."""

    step = 0

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        if key.startswith("peak_rss_gib_after/"):
            done = {"step": self.step, "segment_done": key.split("/", 1)[1], "peak_rss_gib": round(value, 2)}
            print(json.dumps(done), file=sys.stderr, flush=True)


def _current_rss_gib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 30


class _GraphProbe:
    """Stands in for one compiled Cell of the host-remat gradient: on its first call, compiles it alone
    (``Cell.compile``) and then runs it, recording the resident-memory growth of each and the compile time."""

    def __init__(self, name: str, cell, record: dict):
        self.name, self.cell, self.record = name, cell, record

    def __getattr__(self, key):                           # the wrapped Cell's attributes (e.g. a store's buffers)
        return getattr(self.cell, key)

    def __call__(self, *args):
        if self.name in self.record:
            return self.cell(*args)
        import mindspore as ms
        r0, t0 = _current_rss_gib(), time.perf_counter()
        self.cell.compile(*args)
        r1, t1 = _current_rss_gib(), time.perf_counter()
        out = self.cell(*args)
        ms.runtime.synchronize()
        self.record[self.name] = {"compile_gib": round(r1 - r0, 3), "compile_s": round(t1 - t0, 1),
                                  "first_run_gib": round(_current_rss_gib() - r1, 3)}
        return out


def probe_graphs(grad_step, record: dict) -> None:
    """Wrap every compiled Cell of a :class:`~mindsponge_fold.train.remat.HostRematGrad` in a :class:`_GraphProbe`."""
    for attr in ("tail_vjp", "embed_vjp", "embed_forward", "finish"):
        setattr(grad_step, attr, _GraphProbe(attr, getattr(grad_step, attr), record))
    for stack, name in zip(grad_step.stacks, ("extra_msa_block", "evoformer_block")):
        for key in ("forward", "vjp", "load", "store"):
            stack[key] = _GraphProbe(f"{name}_{key}", stack[key], record)
    if grad_step.templates:
        for key in ("forward", "vjp"):
            grad_step.templates[key] = _GraphProbe(f"template_{key}", grad_step.templates[key], record)


def run_one(args) -> dict:
    """Child process (our side): build TrainStep at one crop size, export for the reference, run the steps."""
    import mindspore as ms
    import numpy as np

    from mindsponge_fold.common.config import load_config
    from mindsponge_fold.train.step import TrainStep
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")
    overrides = [f"data.train.crop_size={args.one}", "train.max_recycle=0"]
    cfg = load_config(args.preset, overrides + list(args.set))
    batch = make_batch(args.preset, overrides + list(args.set), args.sample)
    t0 = time.perf_counter()
    trainer = TrainStep(cfg, with_optimizer=not args.grad_only)
    build_s = time.perf_counter() - t0
    built_rss = bc.peak_rss_gib()
    if args.export:
        export_for_alphafold(trainer, batch, Path(args.export))
    profile = _LiveProfile() if hasattr(trainer.grad_step, "profile") else None
    graphs = {}
    if args.graph_memory:
        if profile is None:
            raise SystemExit("--graph-memory needs the host-driven recomputation (model.global_config.use_remat)")
        probe_graphs(trainer.grad_step, graphs)
    times, losses, profiles, scales, skipped = [], [], [], [], []
    for s in range(args.steps):
        if profile is not None:
            profile.clear()
            profile.step = s
            trainer.grad_step.profile = profile
        t0 = time.perf_counter()
        out = trainer.step(batch, s) if not args.grad_only else gradient_only(trainer, batch, s)
        times.append(time.perf_counter() - t0)
        losses.append(out["loss/total"])
        scales.append(out["loss_scale"])
        skipped.append(bool(out["skipped"]))
        if profile is not None:
            profiles.append({k: round(v, 2) for k, v in profile.items() if not k.startswith(("_", "peak_rss"))})
            profiles[-1]["peak_rss_gib_after"] = {k.split("/", 1)[1]: round(v, 2) for k, v in profile.items()
                                                  if k.startswith("peak_rss")}
        print(json.dumps({"step": s, "time_s": round(times[-1], 2), "loss": out["loss/total"],
                          "loss_scale": out["loss_scale"], "skipped": bool(out["skipped"]),
                          "rss_gib": round(bc.peak_rss_gib(), 2)}), file=sys.stderr, flush=True)
    evo = cfg.model.embeddings_and_evoformer
    steady = times[1:]
    result = {"side": "ours_grad" if args.grad_only else "ours", "crop_size": args.one, "preset": args.preset,
              "evoformer_num_block": int(evo.evoformer_num_block),
              "extra_msa_stack_num_block": int(evo.extra_msa_stack_num_block),
              "template_stack_num_block": int(evo.template.template_pair_stack.num_block),
              "msa_channel": int(evo.msa_channel), "pair_channel": int(evo.pair_channel),
              "use_remat": str(trainer.ctx.remat), "dropout": bool(cfg.train.dropout), "overrides": list(args.set),
              "batch_shapes": {k: list(np.shape(batch[k])[2:])
                               for k in ("aatype", "msa_feat", "extra_msa", "template_aatype") if k in batch},
              "build_s": round(build_s, 2), "peak_rss_after_build_gib": round(built_rss, 2),
              "first_step_s": round(times[0], 2),
              "step_s": round(float(min(steady)), 2) if steady else None,
              "step_times_s": [round(t, 2) for t in times], "losses": losses,
              "compute_dtype": str(cfg.precision.compute_dtype), "loss_scale_after_step": scales,
              "skipped_steps": [s for s, k in enumerate(skipped) if k],
              "finite": bool(np.all(np.isfinite(losses))), "peak_rss_gib": round(bc.peak_rss_gib(), 2)}
    if graphs:
        result["graph_memory_gib"] = graphs
        result["graph_memory_total"] = {k: round(sum(g[k] for g in graphs.values()), 2)
                                        for k in ("compile_gib", "compile_s", "first_run_gib")}
    if profiles:
        result["profile_s"] = profiles[-1]
        seconds = [v for v in profiles[-1].values() if not isinstance(v, dict)]
        result["profile_s"]["optimizer_apply_and_rest"] = round(times[-1] - sum(seconds), 2)
    return result


def gradient_only(trainer, batch: dict, step: int) -> dict:
    """One step's gradient alone (the ``ours_grad`` side): the fields ``run_one`` records of a full step."""
    import numpy as np
    grads, losses, terms, _, _ = trainer.batch_gradients(batch, step)
    for g in grads:                                       # wait for the whole gradient, as the apply graph would
        g.asnumpy()
    total = float(np.mean([t[0] for t in terms]))
    return {"loss/total": total, "loss_scale": float(trainer.scaler.scale_value.asnumpy()),
            "skipped": not bool(np.isfinite(losses).all())}


def af_command(args, work: Path, optimizer: bool = False) -> list:
    sets = [x for s in AF_FP32 + AF_TRAIN_INITIAL + list(args.af_set) for x in ("--set", _af_value(s))]
    return [str(Path(args.af_venv) / "bin" / "python"), str(HERE / "bench_af_train_reference.py"),
            "--params", str(work / "params.npz"), "--batch", str(work / "batch.npz"), "--model", "model_1_ptm",
            "--remat", "--steps", str(args.steps)] + sets + (["--optimizer"] if optimizer else [])


def _af_value(item: str) -> str:
    """key=value with the value as JSON (bench_af_train_reference reads JSON)."""
    key, value = item.split("=", 1)
    try:
        json.loads(value)
    except ValueError:
        value = json.dumps(value)
    return f"{key}={value}"


def sweep(args, argv) -> dict:
    runs = []
    report = {"benchmark": "paper-size training step (train_initial, 48 blocks, full widths and MSA sizes, fp32, "
                           "dropout on): ours vs AlphaFold's own, same batch and weights, one at a time",
              "preset": args.preset, "sample": str(args.sample), "mem_limit_gib": args.mem_limit,
              "machine": bc.machine_info(), "runs": runs}
    for crop in args.crops:
        entry = {"crop_size": crop}
        runs.append(entry)
        with tempfile.TemporaryDirectory() as work:
            work = Path(work)
            for side in ("ours", "ours_grad"):
                if side not in args.sides:
                    continue
                cmd = bc.child_command(__file__, argv, "--crops", crop)
                cmd += [] if (work / "batch.npz").exists() else ["--export", str(work)]   # the first side exports
                cmd += ["--grad-only"] if side == "ours_grad" else []
                print(f"crop={crop} {side}: {' '.join(cmd[1:])}", flush=True)
                entry[side] = bc.run_entry(bc.run_guarded(cmd, args.mem_limit, args.timeout), {"side": side})
                entry[side]["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
                print(json.dumps(entry[side]), flush=True)
            for side in ("alphafold", "alphafold_adam"):
                if side not in args.sides or not (work / "batch.npz").exists():
                    continue
                cmd = af_command(args, work, optimizer=side == "alphafold_adam")
                print(f"crop={crop} {side}: {' '.join(cmd)}", flush=True)
                entry[side] = bc.run_entry(bc.run_guarded(cmd, args.mem_limit, args.timeout), {"side": side})
                entry[side]["load_avg_1min_after"] = round(os.getloadavg()[0], 2)
                print(json.dumps(entry[side]), flush=True)
        pairs = (("ours", "alphafold", "ours_over_af"), ("ours", "alphafold_adam", "ours_over_af_adam"),
                 ("ours_grad", "alphafold", "ours_grad_over_af"))
        for mine, theirs, suffix in pairs:
            a, b = entry.get(mine, {}), entry.get(theirs, {})
            for key in ("step_s", "first_step_s", "peak_rss_gib"):
                if a.get(key) and b.get(key):
                    entry[f"{key}_ratio_{suffix}"] = round(a[key] / b[key], 2)
        if args.out:
            bc.write_result(args.out, report)
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--preset", default="train_initial")
    ap.add_argument("--sample", default=str(FIXTURE), help="raw features .npz with ground truth")
    ap.add_argument("--steps", type=int, default=2, help="steps per side and crop (the first compiles)")
    ap.add_argument("--sides", nargs="+", default=["ours", "alphafold", "alphafold_adam", "ours_grad"],
                    choices=["ours", "alphafold", "alphafold_adam", "ours_grad"])
    ap.add_argument("--af-venv", default=os.environ.get("AF_VENV", "/work/afvenv"))
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (ours)")
    ap.add_argument("--af-set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override (AlphaFold side; e.g. to match an override of ours)")
    ap.add_argument("--mem-limit", type=float, default=22.0, help="GiB; a run above it is killed")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per side and crop")
    ap.add_argument("--out", default=str(bc.RESULTS / "bench_train.json"))
    ap.add_argument("--graph-memory", action="store_true",
                    help="ours: per compiled graph of the gradient, resident memory added by its compile and by its "
                         "first run, and its compile time (compiled on its own before its first call)")
    ap.add_argument("--export", help=argparse.SUPPRESS)
    ap.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--grad-only", action="store_true", help=argparse.SUPPRESS)
    bc.sweep_main(ap, argv, run_one, sweep)


if __name__ == "__main__":
    main()
