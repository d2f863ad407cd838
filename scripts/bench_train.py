#!/usr/bin/env python
"""Training step time and peak memory of the full-width network (model_1_ptm widths) at crop 64 and 128 on CPU.

Each configuration runs in its own subprocess (peak RSS per configuration) under the memory guard of
``bench_common.run_guarded``. Per configuration: the ``train_initial`` preset (Table 4 initial training: 128 MSA
clusters, 1024 extra sequences, 4 templates, Evoformer recomputation per block, fp32) with the crop size set, a real
training batch (2crb chain A from the reference fixture's raw features, 97 residues: crop 128 pads it), no
recycling iterations before the gradient iteration (``train.max_recycle=0``: each recycle adds one forward), and
``--steps`` optimisation steps with the compiled :class:`mindsponge_fold.train.step.TrainStep`. The first step
includes compiling the gradient and apply graphs; the steady step time is the mean of the later steps.

    python scripts/bench_train.py [--crops 64 128] [--blocks 48] [--steps 3] [--mem-limit 14] [--timeout 1200]
        [--set KEY=VALUE ...] [--out benchmarks/results/bench_train.json]

``--blocks`` sets the Evoformer depth (48 in model_1_ptm); the JSON records it for every run.
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

FIXTURE = Path(os.environ.get("MSF_SHARED", bc.REPO.parent / "shared")) / "fixtures" / "reference" / "raw_features.npz"


def training_batch(cfg, tmp: Path) -> dict:
    """One training batch (B=1) of 2crb_A through the real data path: MindRecord -> training pipeline."""
    import numpy as np

    from mindsponge_fold.data import mindrecord as mr
    from mindsponge_fold.data.dataset import create_train_dataset
    (tmp / "in").mkdir()
    with np.load(FIXTURE) as f:
        np.savez(tmp / "in" / "2crb_A.npz", **{k: f[k] for k in f.files})
    mr.convert(tmp / "in", tmp / "b.mindrecord", num_shards=1, progress=False)
    pipeline = create_train_dataset(tmp / "b.mindrecord", cfg, batch_size=1, shuffle=False, num_workers=1)
    return next(pipeline.create_dict_iterator(output_numpy=True, num_epochs=1))


def run_one(args) -> dict:
    """Child process: build TrainStep at one crop size, run ``args.steps`` steps; one JSON line."""
    import mindspore as ms
    import numpy as np

    from mindsponge_fold.common.config import load_config
    from mindsponge_fold.train.step import TrainStep
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")
    overrides = [f"data.train.crop_size={args.one}", "train.max_recycle=0",
                 f"model.global_config.use_remat={'true' if args.remat else 'false'}"]
    if args.blocks:
        overrides.append(f"model.embeddings_and_evoformer.evoformer_num_block={args.blocks}")
    cfg = load_config(args.preset, overrides + list(args.set))
    with tempfile.TemporaryDirectory() as tmp:
        batch = training_batch(cfg, Path(tmp))
    t0 = time.perf_counter()
    trainer = TrainStep(cfg)
    build_s = time.perf_counter() - t0
    print(json.dumps({"built_s": round(build_s, 2), "rss_gib": round(bc.peak_rss_gib(), 2)}), file=sys.stderr,
          flush=True)
    times, losses = [], []
    for s in range(args.steps):
        t0 = time.perf_counter()
        out = trainer.step(batch, s)
        times.append(time.perf_counter() - t0)
        losses.append(out["loss/total"])
        print(json.dumps({"step": s, "time_s": round(times[-1], 2), "loss": out["loss/total"],
                          "rss_gib": round(bc.peak_rss_gib(), 2)}), file=sys.stderr, flush=True)
    evo = cfg.model.embeddings_and_evoformer
    steady = times[1:]
    return {"crop_size": args.one, "preset": args.preset, "evoformer_num_block": int(evo.evoformer_num_block),
            "extra_msa_stack_num_block": int(evo.extra_msa_stack_num_block), "msa_channel": int(evo.msa_channel),
            "pair_channel": int(evo.pair_channel), "use_remat": bool(cfg.model.global_config.use_remat),
            "overrides": list(args.set),
            "batch_shapes": {k: list(np.shape(batch[k]))
                             for k in ("msa_feat", "extra_msa", "template_aatype") if k in batch},
            "build_s": round(build_s, 2), "first_step_s": round(times[0], 2),
            "step_s": round(float(np.mean(steady)), 2) if steady else None, "step_times_s": [round(t, 2) for t in times],
            "losses": losses, "finite": bool(np.all(np.isfinite(losses))), "peak_rss_gib": round(bc.peak_rss_gib(), 2)}


def sweep(args, argv) -> dict:
    runs = []
    report = {"benchmark": "training step (gradient + Adam/EMA apply) vs crop size, full-width network, CPU fp32",
              "preset": args.preset, "mem_limit_gib": args.mem_limit, "machine": bc.machine_info(), "runs": runs}
    for crop in args.crops:
        cmd = bc.child_command(__file__, argv, "--crops", crop)
        print(f"crop={crop}: {' '.join(cmd[1:])}", flush=True)
        r = bc.run_guarded(cmd, args.mem_limit, args.timeout)
        entry = bc.run_entry(r, {"crop_size": crop, "evoformer_num_block": args.blocks})
        runs.append(entry)
        print(json.dumps(entry), flush=True)
        if args.out:
            bc.write_result(args.out, report)
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--crops", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--preset", default="train_initial")
    ap.add_argument("--blocks", type=int, default=48, help="Evoformer depth (0: the preset's)")
    ap.add_argument("--steps", type=int, default=3, help="optimisation steps per configuration (first compiles)")
    ap.add_argument("--no-remat", dest="remat", action="store_false", help="no per-block recomputation")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every run, e.g. --set data.train.max_extra_msa=256")
    ap.add_argument("--mem-limit", type=float, default=14.0, help="GiB; a run above it is killed")
    ap.add_argument("--timeout", type=float, default=1200.0, help="seconds per configuration")
    ap.add_argument("--out", default=str(bc.RESULTS / "bench_train.json"))
    ap.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)
    bc.sweep_main(ap, argv, run_one, sweep)


if __name__ == "__main__":
    main()
