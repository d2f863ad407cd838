#!/usr/bin/env python
"""Inference time and peak memory vs sequence length for the full-size network (random weights).

Each length runs in its own subprocess (peak RSS is per length; an out-of-memory run cannot take the sweep down)
under a memory guard that kills the run above ``--mem-limit`` GiB. Per length: one recycling iteration
(``num_recycle=0``) of the compiled AlphaFoldIteration on synthetic features padded like the inference pipeline
(model_1_ptm: 508 MSA clusters + 4 template rows, 5120 extra rows, 4 templates), first call (compile + run), and,
with ``--steady``, a second call (run only). The sweep stops at the first length that does not fit.

    python scripts/bench_predict.py [--lengths 64 128 256 384 512 768 1024 1280 1536] [--chunk auto|0|ROWS]
        [--blocks 48] [--extra-blocks 4] [--steady] [--mem-limit 22] [--timeout 3600]
        [--out benchmarks/results/bench_predict.json]

``--blocks`` overrides the Evoformer depth (48 in the released models) and ``--extra-blocks`` the extra-MSA stack's
(4). Peak memory does not depend on either depth (each stack runs in a graph while loop that replaces its state), so
long lengths can be probed for memory with shallow stacks; the JSON records both depths of every run.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402

DEFAULT_LENGTHS = (64, 128, 256, 384, 512, 768, 1024, 1280, 1536)


def chunk_override(chunk: str) -> str:
    return "chunking.chunk_size=" + ("null" if chunk == "auto" else str(int(chunk)))


def run_one(args) -> dict:
    """Child process: build, compile and run the network at one length; print the result as one JSON line."""
    os.environ.setdefault("GLOG_v", "3")
    from mindsponge_fold.common.config import load_config
    from mindsponge_fold.model.runner import ModelRunner
    overrides = [chunk_override(args.chunk)]
    if args.blocks:
        overrides.append(f"model.embeddings_and_evoformer.evoformer_num_block={args.blocks}")
    if args.extra_blocks:
        overrides.append(f"model.embeddings_and_evoformer.extra_msa_stack_num_block={args.extra_blocks}")
    cfg = load_config(args.preset, overrides)
    n = args.one
    sizes = bc.eval_sizes(cfg, n)
    features = bc.synthetic_features(sizes)
    t0 = time.perf_counter()
    runner = ModelRunner(cfg, None, bucket=False)
    build_s = time.perf_counter() - t0
    rss_built = bc.peak_rss_gib()
    out, timings = runner.run(features, num_recycle=0)
    result = {"num_res": n, "sizes": sizes, "chunk": args.chunk, "preset": args.preset,
              "evoformer_num_block": int(cfg.model.embeddings_and_evoformer.evoformer_num_block),
              "extra_msa_stack_num_block": int(cfg.model.embeddings_and_evoformer.extra_msa_stack_num_block),
              "build_s": round(build_s, 2), "first_call_s": round(timings["first_call_s"], 2),
              "rss_after_build_gib": round(rss_built, 2)}
    finite = bool(all(__import__("numpy").isfinite(out[k]).all() for k in ("structure_module/final_atom_positions",
                                                                           "representations/pair")))
    if args.steady:
        _, timings2 = runner.run(features, num_recycle=0)
        result["forward_s"] = round(timings2["iterations_s"][0], 2)
        result["compile_s_est"] = round(result["first_call_s"] - result["forward_s"], 2)
    result["outputs_finite"] = finite
    result["peak_rss_gib"] = round(bc.peak_rss_gib(), 2)
    return result


def sweep(args, argv) -> dict:
    runs = []
    report = {"benchmark": "inference: one AlphaFoldIteration vs N_res (random weights, synthetic features)",
              "preset": args.preset, "chunk": args.chunk, "mem_limit_gib": args.mem_limit,
              "machine": bc.machine_info(), "runs": runs}
    for n in args.lengths:
        cmd = bc.child_command(__file__, argv, "--lengths", n)
        print(f"N_res={n}: {' '.join(cmd[1:])}", flush=True)
        r = bc.run_guarded(cmd, args.mem_limit, args.timeout)
        entry = bc.run_entry(r, {"num_res": n})
        runs.append(entry)
        print(json.dumps(entry), flush=True)
        if args.out:
            bc.write_result(args.out, report)
        if entry["status"] != "ok":
            break
    fits = [e["num_res"] for e in runs if e["status"] == "ok"]
    report["longest_ok_num_res"] = max(fits) if fits else None
    if args.out:
        bc.write_result(args.out, report)
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", type=int, nargs="+", default=list(DEFAULT_LENGTHS))
    ap.add_argument("--preset", default="model_1_ptm")
    ap.add_argument("--chunk", default="auto", help="auto (config null) | 0 (off) | rows per chunk")
    ap.add_argument("--blocks", type=int, default=0, help="Evoformer depth override (0: the preset's)")
    ap.add_argument("--extra-blocks", type=int, default=0, help="extra-MSA stack depth override (0: the preset's, 4)")
    ap.add_argument("--steady", action="store_true", help="also time a second (compiled) call")
    ap.add_argument("--mem-limit", type=float, default=22.0, help="GiB; a run above it is killed")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per length")
    ap.add_argument("--out", default=str(bc.RESULTS / "bench_predict.json"))
    ap.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)
    bc.sweep_main(ap, argv, run_one, sweep)


if __name__ == "__main__":
    main()
