"""Outputs of ``mindsponge-fold evaluate``, all written atomically (``common.fileio``):

* ``metrics.csv``: one row per target (and per domain), columns ``METRIC_COLUMNS``; TM/lDDT in [0, 1], GDT in
  [0, 100], RMSD in A; an empty cell where a value does not exist (no pLDDT in the B-factors, no native contact).
* ``metrics.md``: the same table plus the prediction/native files used, the summary, missing predictions.
* ``summary.json``: mean and median of every metric over the targets (and separately over the domains).
* ``plddt_vs_lddt_ca.png`` (pLDDT vs lDDT-Calpha scatter) and ``per_target.png`` (TM, GDT_TS, lDDT bars).
"""
from __future__ import annotations

import csv
import io
import math

import numpy as np

from mindsponge_fold.common.fileio import atomic_path, write_json, write_text
from mindsponge_fold.eval.metrics import METRIC_COLUMNS

SUMMARY_METRICS = METRIC_COLUMNS[3:]
_DECIMALS = {"tm_score": 4, "gdt_ts": 2, "gdt_ha": 2, "lddt": 4, "lddt_ca": 4, "rmsd_ca": 3, "plddt_mean": 2}


def _fmt(key: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if key in _DECIMALS:
        return f"{float(value):.{_DECIMALS[key]}f}"
    return str(value)


def summarize(rows: list) -> dict:
    """{metric: {"mean", "median", "n"}} over the rows that have a value."""
    out = {}
    for key in SUMMARY_METRICS:
        vals = [float(r[key]) for r in rows if r.get(key) is not None and not math.isnan(float(r[key]))]
        out[key] = {"mean": float(np.mean(vals)) if vals else None,
                    "median": float(np.median(vals)) if vals else None, "n": len(vals)}
    return out


def csv_text(rows: list) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    for r in rows:
        writer.writerow([_fmt(k, r.get(k)) for k in METRIC_COLUMNS])
    return buf.getvalue()


def _md_table(header, lines) -> list:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in line) + " |" for line in lines]
    return out


def markdown_text(rows: list, summaries: dict, sources: dict, missing: list, notes: list) -> str:
    lines = ["# Evaluation", "",
             "TM-score and GDT (percent) from TMscore's superposition search over matched Calpha atoms, normalised by "
             "the native length; lDDT all-atom and Calpha (15 A radius, 0.5/1/2/4 A); Calpha RMSD after Kabsch "
             "superposition; pLDDT = mean model B-factor.", ""]
    header = list(METRIC_COLUMNS) + ["match", "prediction"]
    body = [[_fmt(k, r.get(k)) for k in METRIC_COLUMNS] + [r.get("match", ""), sources.get(r["target"], "")]
            for r in rows]
    lines += _md_table(header, body) + [""]
    for title, summary in summaries.items():
        lines += [f"## Summary ({title})", ""]
        lines += _md_table(["metric", "mean", "median", "n"],
                           [[k, _fmt(k, s["mean"]), _fmt(k, s["median"]), s["n"]] for k, s in summary.items()])
        lines.append("")
    if missing:
        lines += ["## Targets without a prediction", "", ", ".join(missing), ""]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _save_figure(fig, path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")


def plot_files(rows: list, out_dir) -> list:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    with_plddt = [r for r in rows if r.get("plddt_mean") is not None and not _isnan(r.get("lddt_ca"))]
    fig, ax = plt.subplots(figsize=(5, 5))
    if with_plddt:
        x = [r["plddt_mean"] for r in with_plddt]
        y = [100 * r["lddt_ca"] for r in with_plddt]
        ax.scatter(x, y)
        for r, xi, yi in zip(with_plddt, x, y):
            ax.annotate(r["target"], (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
    else:
        ax.text(50, 50, "no pLDDT in the predictions' B-factors", ha="center", va="center")
    ax.plot([0, 100], [0, 100], color="grey", lw=0.8, ls="--")
    ax.set(xlim=(0, 100), ylim=(0, 100), xlabel="mean pLDDT", ylabel="lDDT-Ca x 100",
           title="Predicted vs observed local accuracy")
    _save_figure(fig, out_dir / "plddt_vs_lddt_ca.png")
    plt.close(fig)
    written.append(out_dir / "plddt_vs_lddt_ca.png")

    fig, ax = plt.subplots(figsize=(max(5.0, 0.6 * len(rows) + 2), 4))
    pos = np.arange(len(rows))
    for k, (key, scale, label) in enumerate((("tm_score", 1, "TM-score"), ("gdt_ts", 0.01, "GDT_TS / 100"),
                                             ("lddt", 1, "lDDT"))):
        vals = [0.0 if _isnan(r.get(key)) else scale * r[key] for r in rows]
        ax.bar(pos + (k - 1) * 0.27, vals, width=0.27, label=label)
    ax.set_xticks(pos, [r["target"] for r in rows], rotation=45, ha="right")
    ax.set(ylim=(0, 1), ylabel="score", title="Per-target accuracy")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    _save_figure(fig, out_dir / "per_target.png")
    plt.close(fig)
    written.append(out_dir / "per_target.png")
    return written


def _isnan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def write_report(out_dir, rows: list, sources: dict, missing: list, notes: list) -> dict:
    """Write every output; returns the summaries."""
    targets = [r for r in rows if not r.get("is_domain")]
    domains = [r for r in rows if r.get("is_domain")]
    summaries = {"targets": summarize(targets)}
    if domains:
        summaries["domains"] = summarize(domains)
    plot_files(rows, out_dir)
    write_json(out_dir / "summary.json", summaries, indent=2)
    write_text(out_dir / "metrics.md", markdown_text(rows, summaries, sources, missing, notes))
    write_text(out_dir / "metrics.csv", csv_text(rows))  # last: its presence means the run completed
    return summaries
