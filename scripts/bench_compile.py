#!/usr/bin/env python
"""Graph compile time of the full-size network (model_1_ptm: 48 Evoformer blocks, random weights) at ~100 residues.

Cold: a fresh process with no compile cache: ``ModelRunner.compile`` of the AlphaFoldIteration graph (compile only,
no execution, as predict's first call compiles). Warm: MindSpore's on-disk cache through ``ModelRunner``'s keyed
cache directory (``model.runner.use_compile_cache``): one process fills a fresh cache, a second process loads it;
the second one's compile time is reported. Every measurement runs in its own subprocess. With ``--forward`` the cold
process also times one forward call after compiling.

    python scripts/bench_compile.py [--preset model_1_ptm] [--num-res 100] [--chunk auto] [--no-warm] [--forward]
        [--out benchmarks/results/bench_compile.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402


def compile_once(args) -> dict:
    """Child process: build the network and compile its graph once (optionally through a cache directory)."""
    os.environ.setdefault("GLOG_v", "3")
    from mindsponge_fold.common.config import load_config
    from mindsponge_fold.model.runner import ModelRunner
    overrides = ["chunking.chunk_size=" + ("null" if args.chunk == "auto" else args.chunk)]
    if args.blocks:
        overrides.append(f"model.embeddings_and_evoformer.evoformer_num_block={args.blocks}")
    cfg = load_config(args.preset, overrides)
    n = args.num_res
    runner = ModelRunner(cfg, None, bucket=False, compile_cache=args.cache or None)
    feats = bc.synthetic_features(bc.eval_sizes(cfg, n))
    c0 = time.process_time()
    compile_s = runner.compile(feats)
    # CPU seconds of this process: compiling is single-threaded, so on a shared machine this is the better number
    result = {"compile_s": round(compile_s, 2), "compile_cpu_s": round(time.process_time() - c0, 2),
              "rss_after_compile_gib": round(bc.peak_rss_gib(), 2),
              "evoformer_num_block": int(cfg.model.embeddings_and_evoformer.evoformer_num_block),
              "num_res": n, "chunk": args.chunk, "cache": bool(args.cache)}
    if args.forward:
        result["first_forward_s"] = round(runner.run(feats, num_recycle=0)[1]["iterations_s"][0], 2)
        result["peak_rss_gib"] = round(bc.peak_rss_gib(), 2)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="model_1_ptm")
    ap.add_argument("--num-res", type=int, default=100)
    ap.add_argument("--chunk", default="auto", help="auto | 0 | rows per chunk")
    ap.add_argument("--blocks", type=int, default=0, help="Evoformer depth override (0: the preset's)")
    ap.add_argument("--forward", action="store_true", help="time one forward after the cold compile")
    ap.add_argument("--no-warm", action="store_true", help="skip the compile-cache measurement")
    ap.add_argument("--mem-limit", type=float, default=20.0)
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--out", default=str(bc.RESULTS / "bench_compile.json"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cache", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(compile_once(args)), flush=True)
        return
    base = [sys.executable, os.path.abspath(__file__), "--child", "--preset", args.preset, "--num-res",
            str(args.num_res), "--chunk", args.chunk, "--blocks", str(args.blocks)]
    report = {"benchmark": "graph compile time of AlphaFoldIteration (Cell.compile, random weights)",
              "preset": args.preset, "num_res": args.num_res, "machine": bc.machine_info()}

    def measure(extra):
        r = bc.run_guarded(base + extra, args.mem_limit, args.timeout)
        if r["returncode"] != 0 or not r["result"]:
            raise SystemExit(f"compile run failed: {r}")
        print(json.dumps(r["result"]), flush=True)
        return r["result"]

    report["cold"] = measure(["--forward"] if args.forward else [])
    if not args.no_warm:
        with tempfile.TemporaryDirectory(prefix="msf_compile_cache_") as cache:
            report["cache_fill"] = measure(["--cache", cache])
            report["warm"] = measure(["--cache", cache])
    report["cold_compile_s"] = report["cold"]["compile_s"]
    report["warm_compile_s"] = report.get("warm", {}).get("compile_s")
    report["machine_after"] = bc.machine_info()
    bc.write_result(args.out, report)


if __name__ == "__main__":
    main()
