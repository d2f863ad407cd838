#!/usr/bin/env python
"""Check the network against an AlphaFold reference fixture, following the fixture README's "Suggested use".

    python scripts/check_parity.py [--fixture ../shared/fixtures/reference] [--out-dir parity_out] [--json report.json]
    python scripts/check_parity.py --gradients [--set model.global_config.use_remat=host] [...]

For a fixture directory of that format (any protein, seed or recycle count ``K``; the main run is the largest
``outputs_recycle<K>.npz``) it runs the user-facing ``mindsponge-fold run-features`` command:

1. teacher-forced: ``--num-recycle K --teacher-forcing outputs_recycle<K>.npz`` (iteration r > 0 gets the
   reference's recycle_{r-1}/* as prev) -> every final network output vs ``suggested_tolerances.json`` (max and rms);
2. free-running: ``--num-recycle K`` -> iteration 0's ``recycle_0/*`` (and ``outputs_recycle0.npz`` when the fixture has
   it) at the suggested level, and the final outputs at the "free" level derived from ``noise_floor.json`` (rms only,
   as the README asks).

With ``--gradients`` instead: the training gradients of iteration K (teacher-forced, ground truth merged in, dropout
off; ``run-features --gradients``, i.e. the training step's own gradient code) against ``gradients.npz``, every
parameter within its absolute bounds from ``gradients_noise.json``; prints the worst parameters, the global norms and
the loss terms of that pass. ``--set`` overrides go to run-features (e.g. the recomputation mode).

Prints one table per comparison, writes a JSON report with ``--json``, exits 1 if anything is out of tolerance.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mindsponge_fold.eval import parity  # noqa: E402


def load(path) -> dict:
    import numpy as np
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def run_features(fixture: Path, k: int, out: Path, teacher: Path | None, extra=()) -> dict:
    from mindsponge_fold.cli import main
    argv = ["run-features", "--features", str(fixture / "processed_features.npz"),
            "--params", str(fixture / "params.npz"), "--af-config", str(fixture / "config.json"),
            "--num-recycle", str(k), "--no-bucket", "--out", str(out)]
    if teacher is not None:
        argv += ["--teacher-forcing", str(teacher)]
    argv += list(extra)
    print("$ mindsponge-fold " + " ".join(argv), flush=True)
    rc = main(argv)
    if rc != 0:
        raise SystemExit(f"run-features failed with exit code {rc}")
    return load(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fixture", default=str(REPO.parent / "shared" / "fixtures" / "reference"),
                    help="reference fixture directory (default ../shared/fixtures/reference)")
    ap.add_argument("--out-dir", default="parity_out", help="where run-features writes its outputs")
    ap.add_argument("--json", help="write the report here")
    ap.add_argument("--gradients", action="store_true", help="compare the training gradients (gradients.npz)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override passed to run-features")
    args = ap.parse_args(argv)
    os.environ.setdefault("GLOG_v", "3")
    fixture = Path(args.fixture)
    main_file, k = parity.main_run(fixture)
    ref = load(main_file)
    final = [n for n in parity.network_outputs(ref) if not n.startswith("recycle_")]
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"fixture": str(fixture), "num_recycle": k, "comparisons": {}}

    def record(title, rows):
        print(parity.format_rows(rows, title), flush=True)
        report["comparisons"][title] = rows

    tols = parity.tolerances(fixture)
    sets = [x for o in args.overrides for x in ("--set", o)]
    if args.gradients:
        ok = check_gradients(fixture, k, main_file, out_dir, sets, tols, report)
        return finish(report, ok, args.json)
    forced = run_features(fixture, k, out_dir / "teacher_forced.npz", main_file, sets)
    record(f"last iteration (K={k}), teacher-forced, suggested tolerances",
           parity.compare_rows(forced, ref, final, tols))
    free = run_features(fixture, k, out_dir / "free.npz", None, sets)
    first = [n for n in parity.network_outputs(ref) if n.startswith("recycle_0/")]
    if k > 0:
        record("iteration 0 (recycle_0/*), suggested tolerances", parity.compare_rows(free, ref, first, tols))
    zero_file = fixture / "outputs_recycle0.npz"
    if k > 0 and zero_file.exists():
        zero_ref = load(zero_file)
        single = run_features(fixture, 0, out_dir / "iteration0.npz", None, sets)
        names = [n for n in parity.network_outputs(zero_ref) if n in single]
        record("single iteration vs outputs_recycle0.npz, suggested tolerances",
               parity.compare_rows(single, zero_ref, names, tols))
    record(f"free-running K={k}, final outputs, free level (rms)",
           parity.compare_rows(free, ref, final, parity.free_tolerances(fixture), use_max=False))
    ok = all(r["ok"] for rows in report["comparisons"].values() for r in rows)
    return finish(report, ok, args.json)


def check_gradients(fixture: Path, k: int, main_file: Path, out_dir: Path, sets: list, tols: dict,
                    report: dict) -> bool:
    """run-features --gradients on iteration K (teacher-forced) vs gradients.npz; prints and records the tables."""
    out = out_dir / "gradients.npz"
    run_features(fixture, k, out_dir / "gradient_pass_outputs.npz", main_file,
                 ["--ground-truth", str(fixture / "ground_truth.npz"), "--gradients", str(out)] + sets)
    ours = load(out)
    ref = load(fixture / parity.GRADIENTS_FILE)
    rows = parity.compare_gradients(ours, ref, parity.gradient_tolerances(fixture))
    print(parity.format_gradient_rows(rows, f"training gradients of iteration K={k}, teacher-forced"), flush=True)
    norms = {"ours": parity.global_norm(ours), "reference": parity.global_norm(ref)}
    print(f"global gradient norm: ours {norms['ours']:.6g}, reference {norms['reference']:.6g} "
          f"(relative difference {abs(norms['ours'] - norms['reference']) / norms['reference']:.2e})", flush=True)
    losses = [n for n in ref if n.startswith("loss/") and n in ours]
    loss_rows = parity.compare_rows(ours, ref, losses, tols)
    print(parity.format_rows(loss_rows, "loss terms of the gradient pass, suggested tolerances"), flush=True)
    report["gradients"] = {"rows": rows, "global_norm": norms, "passed": sum(r["ok"] for r in rows),
                           "compared": len(rows)}
    report["comparisons"]["gradient pass losses"] = loss_rows
    return all(r["ok"] for r in rows) and all(r["ok"] for r in loss_rows) and len(rows) > 0


def finish(report: dict, ok: bool, json_path) -> int:
    report["ok"] = bool(ok)
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=1))
    print("PARITY OK" if ok else "PARITY FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
