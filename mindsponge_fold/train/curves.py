"""Training log (JSON lines) and the training-curve plot (PNG, matplotlib Agg).

Every line of ``<out>/train_log.jsonl`` is one JSON object with ``kind`` = ``"train"`` (one optimisation step:
``step`` = steps done, loss terms, ``loss_scale``, ``grad_norm``, ``lr``, ``step_time_s``, ``samples_per_s``, ...)
or ``"val"`` (``val/lddt_ca`` and per-sample scores at that step). A run killed in the middle of appending a line
leaves it half-written: :func:`read_log` drops such a last line with a warning (a resume then rewrites the log).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from mindsponge_fold.common.errors import InputError
from mindsponge_fold.common.fileio import atomic_path, write_text


def read_log(path) -> list[dict]:
    """The records of a JSON-lines log. An unparsable last line (a write cut off by a kill) is dropped with a
    one-line warning on stderr; an unparsable line before it is an InputError naming the line."""
    path = Path(path)
    if not path.exists():
        return []
    lines = [(i, line) for i, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    records = []
    for k, (i, line) in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if k < len(lines) - 1:
                raise InputError(f"not a JSON line ({e.msg}, column {e.colno})", path, i) from None
            print(f"warning: {path}:{i}: dropped a truncated last line ({len(line)} characters, {e.msg}): "
                  "a write interrupted by a kill", file=sys.stderr)
    return records


def truncate_log(path, step: int) -> None:
    """Drop records after ``step`` (a resumed run repeats the steps after its checkpoint; step 0: all)."""
    if not Path(path).exists():
        return
    records = [r for r in read_log(path) if r.get("step", 0) <= step] if step > 0 else []
    write_text(path, "".join(json.dumps(r) + "\n" for r in records))


def append_record(path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()


def moving_average(values, window: int) -> np.ndarray:
    values = np.asarray(values, np.float64)
    if len(values) == 0:
        return values
    window = max(1, min(window, len(values)))
    kernel = np.ones(window) / window
    padded = np.concatenate([np.full(window - 1, values[0]), values])
    return np.convolve(padded, kernel, mode="valid")


def plot_curves(log_path, png_path, title: str = "training") -> Path:
    """Loss (per step and its moving average) and validation lDDT-Calpha against the step, written atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_log(log_path)
    train = [r for r in records if r.get("kind") == "train" and not r.get("skipped")]
    val = [r for r in records if r.get("kind") == "val"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        steps = [r["step"] for r in train]
        loss = [r["loss/total"] for r in train]
        axes[0].plot(steps, loss, color="0.75", lw=0.8, label="loss/total (per step)")
        axes[0].plot(steps, moving_average(loss, max(1, len(loss) // 20)), color="C0", lw=1.6,
                     label="moving average")
        axes[0].set_yscale("log")
        axes[0].legend(loc="upper right")
    axes[0].set_xlabel("step")
    axes[0].set_ylabel("loss (unscaled total)")
    if val:
        axes[1].plot([r["step"] for r in val], [r["val/lddt_ca"] for r in val], "o-", color="C1")
    axes[1].set_ylim(0, 1)
    axes[1].set_xlabel("step")
    axes[1].set_ylabel("validation lDDT-Ca")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(png_path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(png_path)
