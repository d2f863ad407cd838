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
from pathlib import Path

from mindsponge_fold.common.errors import InputError, ToolError
from mindsponge_fold.eval.matching import MATCH_MODES

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
    """THIN CALL into the predict subcommand (:mod:`mindsponge_fold.commands.predict`).

    Drives it through the subcommand contract (``add_arguments`` + ``run``) with
    ``--fasta FASTA --output-dir DIR`` followed by ``extra``; nothing of predict is reimplemented here.
    """
    if not fasta.is_file():
        raise InputError("no such FASTA file", fasta)
    command = importlib.import_module("mindsponge_fold.commands.predict")
    parser = argparse.ArgumentParser(prog="mindsponge-fold predict")
    command.add_arguments(parser)
    argv = ["--fasta", str(fasta), "--output-dir", str(out_dir)] + shlex.split(extra)
    status = int(command.run(parser.parse_args(argv)) or 0)
    if status != 0:
        raise ToolError(f"predict exited with status {status} on {fasta}")


def run(args) -> int:
    from mindsponge_fold.common.fileio import check_output_dir
    from mindsponge_fold.eval.evaluate import evaluate
    check_output_dir(args.out, "--out directory")         # before predict runs for --fasta
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
