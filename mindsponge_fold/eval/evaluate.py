"""Evaluation of predicted structures against natives: pair the files, match residues, score every target (and
domain), write the report (``eval.report``). The ``evaluate`` command (:mod:`mindsponge_fold.commands.evaluate`)
calls :func:`evaluate`.
"""
from __future__ import annotations

import sys
from pathlib import Path

from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.common.fileio import check_output_dir
from mindsponge_fold.eval import inputs
from mindsponge_fold.eval.matching import match_residues
from mindsponge_fold.eval.metrics import score_model
from mindsponge_fold.eval.report import write_report


MIN_IDENTITY = 0.5       # a model of the native's sequence has (nearly) all matched residues identical


def check_match(match, model, native, model_path, native_path) -> None:
    """Refuse a pairing that cannot be scored: no matched residue, or matched residues mostly of other types."""
    n = len(match.model_index)
    if n == 0:
        raise InputError(f"no residue matches a residue of the native {native_path.name} (matching by "
                         f"{match.method}): nothing to score", model_path)
    a, b = model.aatype[match.model_index], native.aatype[match.native_index]
    same = int(((a == b) | (a == rc.restype_num) | (b == rc.restype_num)).sum())       # X matches anything
    if same < MIN_IDENTITY * n:
        raise InputError(f"only {same} of its {n} residues matched to the native {native_path.name} (by "
                         f"{match.method}) have the native's residue type: not a model of that sequence (another "
                         f"target's file?)", model_path)


def evaluate(predictions: Path, natives: Path, out_dir: Path, domains_path: Path | None = None,
             matching: str = "auto", log=print) -> dict:
    """Score every prediction that pairs with a native; write the report; return {"rows", "summaries", ...}.
    A prediction with no residue matching its native, or whose matched residues are mostly of other types (a model
    of another sequence), is an InputError naming it: a score of it would look like an answer."""
    check_output_dir(out_dir, "--out directory")
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
        native = inputs.read_chain(native_path, role="native")
        model = inputs.read_chain(model_path, role="predicted")
        match = match_residues(model.aatype, model.residue_index, native.aatype, native.residue_index, matching)
        check_match(match, model, native, model_path, native_path)
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
