#!/usr/bin/env python
"""Run the whole benchmark suite, one benchmark after the other (each in its own process), results as JSON in
benchmarks/results/:

* bench_compile.json     graph compile time of the full model_1_ptm forward (cold and warm cache), ~100 residues
* bench_predict.json     forward time and peak RSS vs length (full-size network, until it no longer fits)
* bench_memory_phases.json  inference resident memory phase by phase (compile, heap release, calls; warm cache)
* bench_train.json       training step time and peak RSS at crop 64 / 128, full-width network (bench_train.py)
* bench_data.json        training data loader samples/s
* bench_af_compare.json  forward time side by side with the AlphaFold reference (when --af-venv exists)
* bench_all.json         which benchmarks ran, exit codes, wall times

    python scripts/bench_all.py [--af-venv /work/afvenv] [--skip NAME ...] [--quick]

``--quick`` runs the short variants (predict: 64/128/256 with a 2-block Evoformer; train: 2-block Evoformer, 2 steps;
no warm-cache compile).
Memory-heavy runs are guarded (see bench_predict.py); run the suite on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def plan(args) -> list:
    py = sys.executable
    steps = [("compile", [py, f"{HERE}/bench_compile.py"] + (["--no-warm"] if args.quick else [])),
             ("predict", [py, f"{HERE}/bench_predict.py", "--steady"]
              + (["--lengths", "64", "128", "256", "--blocks", "2"] if args.quick else [])),
             ("memory_phases", [py, f"{HERE}/bench_memory_phases.py"]
              + (["--variants", "cold"] if args.quick else [])),
             ("train", [py, f"{HERE}/bench_train.py"] + (["--blocks", "2", "--steps", "2"] if args.quick else [])),
             ("data", [py, f"{HERE}/bench_data.py"]),
             ("af_compare", [py, f"{HERE}/bench_af_compare.py", "--af-venv", args.af_venv])]
    return [(name, cmd) for name, cmd in steps if name not in args.skip]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--af-venv", default=os.environ.get("AF_VENV", "/work/afvenv"))
    ap.add_argument("--skip", nargs="*", default=[], choices=["compile", "predict", "train", "data", "af_compare"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(bc.RESULTS / "bench_all.json"))
    args = ap.parse_args(argv)
    summary = {"machine": bc.machine_info(), "steps": []}
    env = dict(os.environ, GLOG_v=os.environ.get("GLOG_v", "3"))
    for name, cmd in plan(args):
        if name == "train" and not os.path.exists(cmd[1]):
            summary["steps"].append({"name": name, "status": "skipped (scripts/bench_train.py not present)"})
            continue
        if name == "af_compare" and not os.path.exists(os.path.join(args.af_venv, "bin", "python")):
            summary["steps"].append({"name": name, "status": f"skipped (no AlphaFold venv at {args.af_venv})"})
            continue
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        t0 = time.time()
        rc = subprocess.call(cmd, env=env)
        summary["steps"].append({"name": name, "command": " ".join(cmd[1:]), "exit_code": rc,
                                 "wall_s": round(time.time() - t0, 1)})
        bc.write_result(args.out, summary)
    bc.write_result(args.out, summary)
    failed = [s["name"] for s in summary["steps"] if s.get("exit_code")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
