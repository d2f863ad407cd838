"""Comparison of our outputs with an AlphaFold reference fixture (framework-free).

A fixture directory in the format of ``../shared/fixtures/reference`` holds ``outputs_recycle<K>.npz`` (the main run,
``K`` recycling iterations), optionally ``outputs_recycle0.npz``, ``suggested_tolerances.json`` (per output:
``max_abs_over_max_ref`` and ``rms_over_rms_ref``) and ``noise_floor.json`` (measured float32-vs-float64 errors, from
which the looser "free-running" tolerances are derived). The errors are relative: ``max|d| / max|ref|`` and
``rms(d) / rms(ref)``.

Training gradients (``gradients.npz`` + ``gradients_noise.json``) are compared with ABSOLUTE bounds per parameter
(``suggested_tolerances[grad/<name>]``: ``max_abs_diff`` on max|ours - ref|, ``rms_diff`` on rms(ours - ref)), see
:func:`compare_gradients`.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

NOT_NETWORK = ("loss/", "structure_module/violations/", "structure_module/alt_naming_is_better",
               "structure_module/renamed_", "distogram/true_dist")
_MAIN_RE = re.compile(r"^outputs_recycle(\d+)\.npz$")


def main_run(fixture) -> tuple[Path, int]:
    """The fixture's main outputs file and its recycle count ``K`` (the largest ``outputs_recycle<K>.npz``)."""
    found = sorted((int(m.group(1)), p) for p in Path(fixture).iterdir() if (m := _MAIN_RE.match(p.name)))
    if not found:
        raise FileNotFoundError(f"{fixture}: no outputs_recycle<K>.npz")
    return found[-1][1], found[-1][0]


def tolerances(fixture) -> dict:
    """``suggested_tolerances.json``: the level for single iterations and teacher-forced last iterations."""
    return json.loads((Path(fixture) / "suggested_tolerances.json").read_text())


def free_tolerances(fixture) -> dict:
    """Tolerances for free-running recycling, derived like ``suggested_tolerances.json`` (10x the measured float32
    vs float64 error, floors 1e-5 max / 1e-6 rms) from ``noise_floor.json``'s "free" comparison."""
    free = json.loads((Path(fixture) / "noise_floor.json").read_text())["float32_vs_float64"]["free"]
    return {"outputs:" + k: {"max_abs_over_max_ref": max(10 * v["max_abs_over_max_ref"], 1e-5),
                             "rms_over_rms_ref": max(10 * v["rms_over_rms_ref"], 1e-6)} for k, v in free.items()}


def relative_errors(ours, ref) -> tuple[float, float]:
    """``(max|d| / max|ref|, rms(d) / rms(ref))`` in float64."""
    a, b = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape {a.shape} != reference shape {b.shape}")
    d = np.abs(a - b)
    max_ref = np.abs(b).max() if b.size else 1.0
    rms_ref = np.sqrt((b ** 2).mean()) if b.size else 1.0
    return float(d.max() / (max_ref or 1.0)) if d.size else 0.0, float(np.sqrt((d ** 2).mean()) / (rms_ref or 1.0)) \
        if d.size else 0.0


def network_outputs(names) -> list[str]:
    """The arrays of an outputs file that the network itself produces (not losses, violations or targets)."""
    return [k for k in names if not k.startswith(NOT_NETWORK)]


def compare_rows(ours: dict, ref: dict, keys, tols: dict, use_max: bool = True) -> list[dict]:
    """One row per key: ``{name, max_rel, rms_rel, max_tol, rms_tol, ok}``; ``use_max=False`` judges rms only (the
    fixture README's rule for free-running recycling)."""
    rows = []
    for k in keys:
        t = tols["outputs:" + k]
        if k not in ours:
            rows.append({"name": k, "max_rel": None, "rms_rel": None, "max_tol": t["max_abs_over_max_ref"],
                         "rms_tol": t["rms_over_rms_ref"], "ok": False, "problem": "missing from our outputs"})
            continue
        mr, rr = relative_errors(ours[k], ref[k])
        ok = rr <= t["rms_over_rms_ref"] and (not use_max or mr <= t["max_abs_over_max_ref"])
        rows.append({"name": k, "max_rel": mr, "rms_rel": rr, "max_tol": t["max_abs_over_max_ref"],
                     "rms_tol": t["rms_over_rms_ref"], "ok": bool(ok)})
    return rows


def format_rows(rows: list[dict], title: str) -> str:
    lines = [f"{title}: {sum(r['ok'] for r in rows)}/{len(rows)} within tolerance",
             f"  {'array':52s} {'max_rel':>9s} {'(tol)':>9s} {'rms_rel':>9s} {'(tol)':>9s}"]
    for r in rows:
        if r["max_rel"] is None:
            lines.append(f"  {r['name']:52s} {r.get('problem', '')}  FAIL")
            continue
        lines.append(f"  {r['name']:52s} {r['max_rel']:9.2e} {r['max_tol']:9.1e} {r['rms_rel']:9.2e} "
                     f"{r['rms_tol']:9.1e}{'' if r['ok'] else '  FAIL'}")
    return "\n".join(lines)


GRADIENTS_FILE = "gradients.npz"


def gradient_tolerances(fixture) -> dict:
    """``gradients_noise.json`` -> suggested_tolerances: ``grad/<name>`` -> {max_abs_diff, rms_diff}."""
    return json.loads((Path(fixture) / "gradients_noise.json").read_text())["suggested_tolerances"]


def compare_gradients(ours: dict, ref: dict, tols: dict) -> list[dict]:
    """One row per reference gradient ``grad/<name>``: absolute max / rms differences, their bounds, the worse of the
    two ratios (difference / bound) and ``ok``; a gradient we do not produce, or of another shape, fails."""
    rows = []
    for name in sorted(k for k in ref if k.startswith("grad/")):
        t = tols[name]
        row = {"name": name, "max_tol": float(t["max_abs_diff"]), "rms_tol": float(t["rms_diff"])}
        if name not in ours or np.shape(ours[name]) != np.shape(ref[name]):
            row.update(max_abs=None, rms=None, ratio=float("inf"), ok=False,
                       problem="missing from our gradients" if name not in ours else
                       f"shape {np.shape(ours[name])} != {np.shape(ref[name])}")
            rows.append(row)
            continue
        d = np.asarray(ours[name], np.float64) - np.asarray(ref[name], np.float64)
        max_abs = float(np.abs(d).max()) if d.size else 0.0
        rms = float(np.sqrt((d ** 2).mean())) if d.size else 0.0
        ratio = max(max_abs / row["max_tol"], rms / row["rms_tol"])
        row.update(max_abs=max_abs, rms=rms, ratio=ratio, ok=bool(ratio <= 1.0))
        rows.append(row)
    return rows


def global_norm(grads: dict) -> float:
    return float(np.sqrt(sum(float((np.asarray(v, np.float64) ** 2).sum()) for k, v in grads.items()
                             if k.startswith("grad/"))))


def format_gradient_rows(rows: list[dict], title: str, worst: int = 15) -> str:
    """The ``worst`` rows by ratio (and every failing one)."""
    ranked = sorted(rows, key=lambda r: -r["ratio"])
    shown = ranked[:worst] + [r for r in ranked[worst:] if not r["ok"]]
    lines = [f"{title}: {sum(r['ok'] for r in rows)}/{len(rows)} parameters within tolerance (worst {len(shown)}: "
             f"difference / bound)",
             f"  {'ratio':>7s} {'max|d|':>10s} {'(bound)':>10s} {'rms(d)':>10s} {'(bound)':>10s}  parameter"]
    for r in shown:
        if r["max_abs"] is None:
            lines.append(f"  {'-':>7s} {r['problem']}  {r['name']}  FAIL")
            continue
        lines.append(f"  {r['ratio']:7.3f} {r['max_abs']:10.3e} {r['max_tol']:10.2e} {r['rms']:10.3e} "
                     f"{r['rms_tol']:10.2e}  {r['name'][len('grad/'):]}{'' if r['ok'] else '  FAIL'}")
    return "\n".join(lines)
