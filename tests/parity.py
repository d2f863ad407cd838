"""Comparison against the reference fixture with its suggested tolerances (README "Suggested use")."""
import json

import numpy as np

from helpers import reference_path


def tolerances() -> dict:
    return json.loads(reference_path("suggested_tolerances.json").read_text())


def free_tolerances() -> dict:
    """Tolerances for free-running recycling, derived like suggested_tolerances.json (10x the measured float32 vs
    float64 error, floors 1e-5 max / 1e-6 rms) from noise_floor.json's "free" comparison."""
    free = json.loads(reference_path("noise_floor.json").read_text())["float32_vs_float64"]["free"]
    return {"outputs:" + k: {"max_abs_over_max_ref": max(10 * v["max_abs_over_max_ref"], 1e-5),
                             "rms_over_rms_ref": max(10 * v["rms_over_rms_ref"], 1e-6)} for k, v in free.items()}


def relative_errors(ours, ref):
    a, b = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    d = np.abs(a - b)
    max_ref = np.abs(b).max() or 1.0
    rms_ref = np.sqrt((b ** 2).mean()) or 1.0
    return float(d.max() / max_ref), float(np.sqrt((d ** 2).mean()) / rms_ref)


def compare(ours: dict, ref, keys, use_max: bool = True, free: bool = False) -> dict:
    """Assert every key is within its tolerance; return {key: (max_rel, rms_rel)} for reporting.

    use_max=False checks the rms error only (free-running recycling: the README asks for rms, not max)."""
    tols = free_tolerances() if free else tolerances()
    report, failures = {}, []
    for k in keys:
        t = tols["outputs:" + k]
        mr, rr = relative_errors(ours[k], ref[k])
        report[k] = (mr, rr)
        if rr > t["rms_over_rms_ref"] or (use_max and mr > t["max_abs_over_max_ref"]):
            failures.append(f"{k}: max_rel {mr:.2e} (tol {t['max_abs_over_max_ref']:.1e}), "
                            f"rms_rel {rr:.2e} (tol {t['rms_over_rms_ref']:.1e})")
    assert not failures, "\n".join(failures)
    return report


def network_outputs(ref) -> list:
    """The arrays of an outputs_recycle*.npz that the network itself produces (not losses/violations/targets)."""
    skip = ("loss/", "structure_module/violations/", "structure_module/alt_naming_is_better",
            "structure_module/renamed_", "distogram/true_dist")
    return [k for k in ref.files if not k.startswith(skip)]
