"""``mindsponge-fold evaluate``: score predicted structures against natives (TM-score, GDT_TS/HA, lDDT, RMSD).

    mindsponge-fold evaluate --predictions P --natives N --out O [--domains D.tsv] [--match auto|number|align]
                             [--fasta F [--predict-args "..."]]

Writes O/metrics.csv (columns: target, n_native, n_matched, tm_score, gdt_ts, gdt_ha, lddt, lddt_ca, rmsd_ca,
plddt_mean), O/metrics.md, O/summary.json and two plots; see ``eval.report``. Pairing of prediction files with
natives and the domain file format: see ``eval.inputs``. Residue matching: see ``eval.matching``.
"""
from __future__ import annotations

import argparse
import importlib
import shlex
import sys
from pathlib import Path

from mindsponge_fold.common.errors import InputError, ToolError
from mindsponge_fold.eval import inputs
from mindsponge_fold.eval.matching import MATCH_MODES, match_residues
from mindsponge_fold.eval.metrics import score_model
from mindsponge_fold.eval.report import write_report

PAIRING_HELP = ("A prediction belongs to target T (the stem of a native file T.pdb/.cif) when its file or directory "
                "name is T or starts with T followed by '_', '-' or '.', e.g. T1043_model_1.pdb or T1043/ (inside a "
                "directory: ranked_0.* if present, else the first structure file by name). Several matches: exact "
                "name first, then ranked_0, then name order.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = PAIRING_HELP
    parser.add_argument("--predictions", required=True, type=Path,
                        help="directory of predicted structures (or one file); filled by predict when --fasta is given")
    parser.add_argument("--natives", required=True, type=Path, help="directory of native structures <TARGET>.pdb/.cif "
                                                                    "(or one file)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--domains", type=Path, help="TSV: target, domain name, residue ranges (native numbering, "
                                                     "e.g. 1-70,90-148); each domain is also scored on its own")
    parser.add_argument("--match", choices=MATCH_MODES, default="auto",
                        help="residue matching: by residue number, by sequence alignment, or auto (number when "
                             "consistent, else alignment; default)")
    parser.add_argument("--fasta", type=Path, help="run `mindsponge-fold predict` on this FASTA first, writing into "
                                                   "--predictions, then evaluate")
    parser.add_argument("--predict-args", default="", help="extra arguments for predict, as one quoted string")


def run_predict(fasta: Path, out_dir: Path, extra: str) -> None:
    """THIN CALL into the predict subcommand (``mindsponge_fold.predict``, implemented elsewhere).

    Drives it through the subcommand contract (``add_arguments`` + ``run``) with
    ``--fasta FASTA --output-dir DIR`` followed by ``extra``; nothing of predict is reimplemented here.
    """
    if not fasta.is_file():
        raise InputError("no such FASTA file", fasta)
    try:
        module = importlib.import_module("mindsponge_fold.predict")
    except ModuleNotFoundError as e:
        raise ToolError("the predict subcommand (mindsponge_fold.predict) is not available; run predict separately "
                        "and pass its output directory as --predictions") from e
    parser = argparse.ArgumentParser(prog="mindsponge-fold predict")
    module.add_arguments(parser)
    argv = ["--fasta", str(fasta), "--output-dir", str(out_dir)] + shlex.split(extra)
    status = int(module.run(parser.parse_args(argv)) or 0)
    if status != 0:
        raise ToolError(f"predict exited with status {status} on {fasta}")


def evaluate(predictions: Path, natives: Path, out_dir: Path, domains_path: Path | None = None,
             matching: str = "auto", log=print) -> dict:
    """Score every prediction that pairs with a native; write the report; return {"rows", "summaries", ...}."""
    native_files = inputs.find_natives(natives)
    paired = inputs.pair_predictions(predictions, native_files)
    if not paired:
        raise InputError(f"no prediction matches any native target ({', '.join(native_files)})", predictions)
    domains = inputs.read_domains(domains_path) if domains_path else []
    notes = [f"domain file lists unknown target {d.target} ({d.label}); ignored"
             for d in domains if d.target not in native_files]
    rows, sources = [], {}
    for target, native_path in native_files.items():
        if target not in paired:
            continue
        model_path = paired[target]
        native = inputs.read_chain(native_path)
        model = inputs.read_chain(model_path)
        match = match_residues(model.aatype, model.residue_index, native.aatype, native.residue_index, matching)
        jobs = [(target, None, False)] + [(d.label, d.residues, True) for d in domains if d.target == target]
        for label, residues, is_domain in jobs:
            scores = score_model(model, native, native_residues=residues, match=match)
            if is_domain and scores.n_native == 0:
                notes.append(f"domain {label}: none of its residue numbers occur in {native_path.name}")
            row = scores.row(label)
            row.update(match=scores.match_method, is_domain=is_domain)
            rows.append(row)
            sources[label] = str(model_path)
            log(f"{label}: TM={row['tm_score']:.4f} GDT_TS={row['gdt_ts']:.2f} lDDT={row['lddt']:.4f} "
                f"lDDT-Ca={row['lddt_ca']:.4f} RMSD={row['rmsd_ca']:.3f} matched {row['n_matched']}/"
                f"{row['n_native']} by {row['match']} ({model_path.name} vs {native_path.name})")
    missing = [t for t in native_files if t not in paired]
    for t in missing:
        log(f"warning: no prediction for target {t}", file=sys.stderr)
    summaries = write_report(out_dir, rows, sources, missing, notes)
    return {"rows": rows, "summaries": summaries, "missing": missing, "sources": sources}


def run(args) -> int:
    if args.fasta is not None:
        run_predict(args.fasta, args.predictions, args.predict_args)
    elif args.predict_args:
        raise InputError("--predict-args needs --fasta")
    result = evaluate(args.predictions, args.natives, args.out, args.domains, args.match)
    s = result["summaries"]["targets"]
    print(f"{s['tm_score']['n']} targets: mean TM={_mean(s, 'tm_score', 4)} GDT_TS={_mean(s, 'gdt_ts', 2)} "
          f"lDDT={_mean(s, 'lddt', 4)}; wrote {args.out / 'metrics.csv'}")
    return 0


def _mean(summary: dict, key: str, decimals: int) -> str:
    value = summary[key]["mean"]
    return "n/a" if value is None else f"{value:.{decimals}f}"
