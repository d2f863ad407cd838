"""Comparison against the reference fixture with its suggested tolerances (README "Suggested use"); the logic lives
in :mod:`mindsponge_fold.eval.parity` (also used by scripts/check_parity.py)."""
from helpers import REFERENCE, reference_path
from mindsponge_fold.eval import parity as P

relative_errors = P.relative_errors


def tolerances() -> dict:
    return P.tolerances(reference_path("suggested_tolerances.json").parent)


def free_tolerances() -> dict:
    return P.free_tolerances(reference_path("noise_floor.json").parent)


def main_run():
    """(path of the fixture's main outputs_recycle<K>.npz, K)."""
    reference_path("suggested_tolerances.json")      # skips when the fixture is absent
    return P.main_run(REFERENCE)


def compare(ours: dict, ref, keys, use_max: bool = True, free: bool = False) -> dict:
    """Assert every key is within its tolerance; return {key: (max_rel, rms_rel)} for reporting.

    use_max=False checks the rms error only (free-running recycling: the README asks for rms, not max)."""
    rows = P.compare_rows(ours, ref, keys, free_tolerances() if free else tolerances(), use_max)
    failures = [r for r in rows if not r["ok"]]
    assert not failures, P.format_rows(failures, "out of tolerance")
    return {r["name"]: (r["max_rel"], r["rms_rel"]) for r in rows}


def network_outputs(ref) -> list:
    """The arrays of an outputs_recycle*.npz that the network itself produces (not losses/violations/targets)."""
    return P.network_outputs(ref.files if hasattr(ref, "files") else ref)
