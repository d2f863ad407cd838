#!/usr/bin/env python
"""Where the inference process's resident memory comes from, phase by phase.

One recycling iteration of ``--preset`` (default model_1_ptm with 1 Evoformer and 1 extra-MSA block: the peak does
not depend on either depth beyond the weights) on synthetic features of ``--num-res`` residues, in a child process
per variant. The child samples its resident size (``/proc/self/statm``) every 10 ms and records it

* after import and synthetic features, after building the model;
* after compiling the iteration graph (``ModelRunner.compile``: as predict's first call compiles, the heap trimmed
  during the compile and released after it);
* at the end of the first call and the highest value during a second (steady) call; plus ``ru_maxrss``.

Variants: ``cold`` (compile from scratch), ``warm_cache`` (a second process that loads the graph from a compile cache
the first one wrote: ``ModelRunner(compile_cache=...)``, as ``MSF_COMPILE_CACHE`` does for predict runs),
``no_templates`` (templates off, cold).

    python scripts/bench_memory_phases.py [--num-res 100] [--set KEY=VALUE ...] [--variants cold warm_cache]
        [--out benchmarks/results/bench_memory_phases.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402

E = "model.embeddings_and_evoformer."
BASE = [E + "evoformer_num_block=1", E + "extra_msa_stack_num_block=1", "chunking.chunk_size=null"]
VARIANTS = {"cold": [], "warm_cache": [], "no_templates": [E + "template.enabled=false"]}


def _rss_gib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 30


def child(args) -> dict:
    """One process: the phases of one variant."""
    os.environ.setdefault("GLOG_v", "3")
    state = {"phase": "import", "peaks": {}}

    def sample():
        while True:
            v = _rss_gib()
            p = state["phase"]
            state["peaks"][p] = max(state["peaks"].get(p, 0.0), v)
            time.sleep(0.01)

    threading.Thread(target=sample, daemon=True).start()
    from mindsponge_fold.common.config import load_config
    from mindsponge_fold.model import host_memory
    from mindsponge_fold.model.runner import ModelRunner
    cfg = load_config(args.preset, BASE + list(args.overrides))
    feats = bc.synthetic_iteration(cfg, args.num_res)
    at = {"import_and_features": _rss_gib()}
    state["phase"] = "build"
    runner = ModelRunner(cfg, None, bucket=False, compile_cache=args.compile_cache or None)
    host_memory.release_free_heap()
    at["built"] = _rss_gib()
    state["phase"] = "compile"
    compile_s = runner.compile(feats)              # as predict's first call compiles: heap trimmed, then released
    at["compiled"] = _rss_gib()
    state["phase"] = "first_call"
    t0 = time.perf_counter()
    runner.run(feats, num_recycle=0)
    first_s = time.perf_counter() - t0
    at["after_first_call"] = _rss_gib()
    state["phase"] = "steady_call"
    t0 = time.perf_counter()
    runner.run(feats, num_recycle=0)
    steady_s = time.perf_counter() - t0
    time.sleep(0.05)
    state["phase"] = "end"
    return {"rss_gib_at": {k: round(v, 3) for k, v in at.items()},
            "peak_rss_gib_in": {k: round(v, 3) for k, v in state["peaks"].items() if k != "end"},
            "compile_s": round(compile_s, 1), "first_call_after_compile_s": round(first_s, 2),
            "steady_call_s": round(steady_s, 2),
            "peak_rss_gib": round(bc.peak_rss_gib(), 3)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="model_1_ptm")
    ap.add_argument("--num-res", type=int, default=100)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override, after the 1 + 1 block default")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--mem-limit", type=float, default=20.0)
    ap.add_argument("--timeout", type=float, default=3600.0)
    ap.add_argument("--out", default=str(bc.RESULTS / "bench_memory_phases.json"))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--compile-cache", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)), flush=True)
        return
    report = {"benchmark": "resident memory of one inference iteration, phase by phase (ours)",
              "command": "python scripts/bench_memory_phases.py " + " ".join(argv if argv is not None
                                                                             else sys.argv[1:]),
              "preset": args.preset, "overrides": BASE + list(args.overrides), "num_res": args.num_res,
              "machine": bc.machine_info(), "variants": {}}

    def run(extra, cache=""):
        cmd = [sys.executable, os.path.abspath(__file__), "--child", "--preset", args.preset,
               "--num-res", str(args.num_res), "--compile-cache", cache]
        cmd += [x for s in list(args.overrides) + extra for x in ("--set", s)]
        return bc.run_entry(bc.run_guarded(cmd, args.mem_limit, args.timeout), {})

    for name in args.variants:
        print(f"{name}: running", flush=True)
        if name == "warm_cache":
            with tempfile.TemporaryDirectory(prefix="msf_mem_cache_") as cache:
                entry = {"writing_the_cache": run(VARIANTS[name], cache), "loading_from_the_cache": run(VARIANTS[name],
                                                                                                       cache)}
        else:
            entry = run(VARIANTS[name])
        report["variants"][name] = entry
        print(json.dumps(entry), flush=True)
        bc.write_result(args.out, report)


if __name__ == "__main__":
    main()
