#!/usr/bin/env python
"""Where our forward time goes, kernel by kernel: MindSpore's profiler on one compiled iteration.

Builds ``--preset`` with ``--set`` overrides (default: model_1_ptm with 1 Evoformer and 1 extra-MSA block, the
``base`` variant of ``scripts/bench_af_modules.py``), runs one recycling iteration on synthetic features of
``--num-res`` residues twice (compile, then a steady call), profiles a third call and writes, per operator type, the
kernel time, the number of launches and the share of the kernel total, plus the wall time of the profiled call (the
difference to the kernel total is the runtime's own time between kernels) and the ``--top`` most expensive single
kernels with their scope, and the kernel time summed per module (three cell levels below the model).

    python scripts/bench_profile_ops.py [--num-res 100] [--set KEY=VALUE ...] [--top 25]
        [--out benchmarks/results/bench_profile_ops.json]
"""
from __future__ import annotations

import argparse
import csv
import glob
import os
import sys
import tempfile
import time


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402

E = "model.embeddings_and_evoformer."
BASE = [E + "evoformer_num_block=1", E + "extra_msa_stack_num_block=1"]


def read_profile(out_dir: str, top: int) -> dict:
    types = glob.glob(os.path.join(out_dir, "**", "cpu_op_type_info_*.csv"), recursive=True)
    details = glob.glob(os.path.join(out_dir, "**", "cpu_op_detail_info_*.csv"), recursive=True)
    if not types or not details:
        raise SystemExit(f"{out_dir}: the profiler wrote no CPU operator tables")
    rows = list(csv.DictReader(open(types[0])))
    total = sum(float(r["total_compute_time"]) for r in rows)
    by_type = sorted(({"op_type": r["op_type"], "ms": round(float(r["total_compute_time"]), 1),
                       "launches": int(r["type_occurrences"]),
                       "share": round(float(r["total_compute_time"]) / max(total, 1e-9), 4)} for r in rows),
                     key=lambda r: -r["ms"])
    kernels = sorted(csv.DictReader(open(details[0])), key=lambda r: -float(r["op_total_time(ms)"]))
    return {"kernel_total_ms": round(total, 1), "launches": sum(r["launches"] for r in by_type),
            "by_op_type": by_type, "by_module": by_module(kernels, total),
            "top_kernels": [{"op_type": r["op_type"], "ms": round(float(r["op_total_time(ms)"]), 1),
                             "launches": int(r["op_occurrences"]), "scope": r["full_op_name"]}
                            for r in kernels[:top]]}


def module_of(scope: str, depth: int = 3) -> str:
    """The module path of a kernel's scope: up to ``depth`` cell names below the model, class names dropped
    ("Default/model-AlphaFoldIteration/evoformer-EmbeddingsAndEvoformer/extra_msa_stack-EvoformerIteration/
    outer_product_mean-OuterProductMean/MatMul-op1" -> "evoformer/extra_msa_stack/outer_product_mean")."""
    cells = [c.split("-")[0] for c in scope.split("/")[2:-1]]
    return "/".join(cells[:depth]) or "(top level)"


def by_module(kernels: list, total: float) -> list:
    sums: dict = {}
    for r in kernels:
        key = module_of(r["full_op_name"])
        ms, n = sums.get(key, (0.0, 0))
        sums[key] = (ms + float(r["op_total_time(ms)"]), n + int(r["op_occurrences"]))
    return [{"module": k, "ms": round(ms, 1), "launches": n, "share": round(ms / max(total, 1e-9), 4)}
            for k, (ms, n) in sorted(sums.items(), key=lambda kv: -kv[1][0])]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="model_1_ptm")
    ap.add_argument("--num-res", type=int, default=100)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override (after the 1 + 1 block default; e.g. "
                         "model.embeddings_and_evoformer.evoformer_num_block=3)")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--out", default=str(bc.RESULTS / "bench_profile_ops.json"))
    args = ap.parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    from mindspore import Profiler
    from mindsponge_fold.common.config import load_config
    from mindsponge_fold.model.runner import ModelRunner
    overrides = BASE + list(args.overrides)
    cfg = load_config(args.preset, overrides)
    feats = bc.synthetic_iteration(cfg, args.num_res)
    report = {"benchmark": "MindSpore profiler, one compiled recycling iteration (random weights, synthetic features)",
              "command": "python scripts/bench_profile_ops.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "preset": args.preset, "overrides": overrides, "num_res": args.num_res, "machine": bc.machine_info()}
    runner = ModelRunner(cfg, None, bucket=False)
    t0 = time.perf_counter()
    runner.run(feats, num_recycle=0)
    report["first_call_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    runner.run(feats, num_recycle=0)
    report["steady_call_s"] = round(time.perf_counter() - t0, 2)
    with tempfile.TemporaryDirectory(prefix="msf_profile_") as work:
        profiler = Profiler(output_path=work)
        t0 = time.perf_counter()
        runner.run(feats, num_recycle=0)
        report["profiled_call_s"] = round(time.perf_counter() - t0, 2)
        profiler.analyse()
        report.update(read_profile(work, args.top))
    report["runtime_between_kernels_s"] = round(report["profiled_call_s"] - report["kernel_total_ms"] / 1e3, 2)
    report["peak_rss_gib"] = round(bc.peak_rss_gib(), 2)
    report["machine"]["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    bc.write_result(args.out, report)
    print({k: report[k] for k in ("steady_call_s", "profiled_call_s", "kernel_total_ms", "launches",
                                  "runtime_between_kernels_s")})
    for r in report["by_op_type"][:12]:
        print(f"  {r['op_type']:24s} {r['ms']:9.1f} ms  {r['launches']:6d} launches  {100 * r['share']:5.1f}%")
    for r in report["by_module"][:20]:
        print(f"  {r['module']:64s} {r['ms']:9.1f} ms  {r['launches']:6d} launches  {100 * r['share']:5.1f}%")


if __name__ == "__main__":
    main()
