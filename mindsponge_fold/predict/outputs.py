"""Output stage of ``predict``: the per-target directory, in AlphaFold's layout (run_alphafold.py).

    <output-dir>/<target>/
        config.yaml                   the resolved config of each model, under the model's name
        run.json                      the command line, working directory, version, and per model its weights,
                                      feature-processing seed and fingerprint (what a rerun compares to reuse it)
        features.npz                  raw features (AlphaFold: features.pkl)
        msas/                         alignments computed by the search tools (and the precomputed ones beside them)
        result_<model>.npz            the model's outputs (+ confidence/*; representations with --save-representations)
        unrelaxed_<model>.pdb/.cif    per-residue pLDDT in the B-factor column
        relaxed_<model>.pdb/.cif      Amber-relaxed (--models-to-relax best|all)
        ranked_<i>.pdb/.cif           models by ranking confidence, relaxed when available
        pae_<model>.json              PAE in the AlphaFold DB layout (models with the pTM head)
        confidence_<model>.json       pLDDT in the AlphaFold DB layout
        ranking_debug.json            {"plddts" | "ptm": {model: score}, "order": [best, ...],
                                      "num_recycles": {model: recycling iterations run}}
        relax_metrics.json            remaining violations etc. per relaxed model
        timings.json                  seconds: features, process_features_<m>, compile_<m>, predict_<m>, relax_<m>
        plots/                        with --plots: pLDDT, PAE and contact-map PNGs

Everything is written into a hidden sibling directory that is renamed to ``<target>`` when complete, so a target
directory exists only when finished: a rerun skips it (unless it asks for other models), and a crash leaves no
half-written target. A stopped run's hidden directory is kept when it holds a finished model, which a rerun reuses
(:mod:`.resume`).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from mindsponge_fold.common import confidence
from mindsponge_fold.common import protein as protein_lib
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.common.fileio import save_npz, write_json, write_text

DONE_MARKER = "ranking_debug.json"      # written last; a finished target directory has it
RANK_LABELS = {"plddt": "plddts", "ptm": "ptm"}


def finished_models(output_dir, name: str) -> list | None:
    """The models of the finished target ``output_dir/name`` (its ranking order), None when there is none; error
    when the directory exists but is not a finished prediction."""
    final = Path(output_dir) / name
    if not final.exists():
        return None
    if (final / DONE_MARKER).is_file():
        try:
            return list(json.loads((final / DONE_MARKER).read_text())["order"])
        except (ValueError, KeyError, TypeError):
            raise InputError(f"unreadable {DONE_MARKER}; remove the directory or pass --overwrite", final) from None
    raise InputError(f"exists but is not a finished prediction (no {DONE_MARKER}); remove it or pass --overwrite",
                     final)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _partial_prefix(name: str) -> str:
    return f".{name}.partial-"


def _stale_partials(root: Path, name: str) -> list:
    """Temporary directories of this target that no running prediction uses (their process is gone, or it is this
    process, which works on one target at a time), newest first."""
    prefix = _partial_prefix(name)
    stale = []
    for path in root.glob(prefix + "*"):
        pid = path.name[len(prefix):].split("-")[0]
        if path.is_dir() and pid.isdigit() and (int(pid) == os.getpid() or not _pid_alive(int(pid))):
            stale.append(path)
    return sorted(stale, key=lambda p: p.stat().st_mtime, reverse=True)


def earlier_outputs(output_dir, name: str) -> list:
    """Directories that may hold model outputs of an earlier run of this target, to reuse: the temporary directories
    of stopped runs (newest first), then the finished target directory."""
    root = Path(output_dir)
    final = root / name
    return _stale_partials(root, name) + ([final] if final.is_dir() else [])


@contextlib.contextmanager
def target_directory(output_dir, name: str):
    """Yield an empty temporary directory beside ``output_dir/name``; rename it to ``name`` on success (replacing
    an existing one) and remove the temporary directories of stopped runs of this target. On error it is deleted,
    unless it holds a finished model (a result_<model>.npz): then it stays, hidden, for a rerun to reuse."""
    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{_partial_prefix(name)}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        if not any(tmp.glob("result_*.npz")):
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    final = root / name
    old = root / f".{name}.replaced-{os.getpid()}"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    for stale in _stale_partials(root, name):
        shutil.rmtree(stale, ignore_errors=True)


def prediction_protein(features: dict, outputs: dict) -> protein_lib.Protein:
    """The predicted structure with per-residue pLDDT as B-factors (model input aatype / residue_index)."""
    first = {k: (np.asarray(features[k])[0] if np.ndim(features[k]) == 2 else features[k])
             for k in ("aatype", "residue_index")}
    return protein_lib.from_prediction(first["aatype"], outputs["structure_module/final_atom_positions"],
                                       outputs["structure_module/final_atom_mask"], first["residue_index"],
                                       plddt=outputs["confidence/plddt"])


def ranking_confidence(outputs: dict, rank_by: str) -> float:
    """AlphaFold's monomer ranking: mean pLDDT; or pTM (models with the PAE head)."""
    if rank_by == "ptm":
        return float(outputs["confidence/ptm"])
    return float(np.mean(outputs["confidence/plddt"]))


def write_structure(directory: Path, stem: str, prot: protein_lib.Protein) -> None:
    write_text(directory / f"{stem}.pdb", protein_lib.to_pdb(prot))
    write_text(directory / f"{stem}.cif", protein_lib.to_mmcif(prot, file_id=stem))


def write_model_outputs(directory: Path, name: str, prot, outputs: dict, keep_representations: bool) -> None:
    """unrelaxed_<name>.pdb/.cif, confidence_<name>.json, (pTM models) pae_<name>.json and, last (a model with it
    is complete: :mod:`.resume`), result_<name>.npz."""
    write_structure(directory, f"unrelaxed_{name}", prot)
    write_text(directory / f"confidence_{name}.json", confidence.plddt_json(outputs["confidence/plddt"]))
    if "confidence/predicted_aligned_error" in outputs:
        confidence.write_pae_json(directory / f"pae_{name}.json", outputs["confidence/predicted_aligned_error"],
                                  outputs["confidence/max_predicted_aligned_error"])
    kept = {k: v for k, v in outputs.items()
            if keep_representations or not k.startswith(("representations/", "recycle_"))}
    save_npz(directory / f"result_{name}.npz", kept)


def relax_model(directory: Path, name: str, prot, cfg) -> tuple[protein_lib.Protein, dict]:
    """Amber-relax one model; write relaxed_<name>.pdb (with hydrogens, as AlphaFold) and .cif (heavy atoms)."""
    from mindsponge_fold.relax.relax import relax_protein
    relaxed_pdb, debug = relax_protein(prot, cfg)
    relaxed = protein_lib.from_pdb_string(relaxed_pdb)
    relaxed_cif = protein_lib.to_mmcif(relaxed, file_id=f"relaxed_{name}")
    write_text(directory / f"relaxed_{name}.pdb", relaxed_pdb)
    write_text(directory / f"relaxed_{name}.cif", relaxed_cif)
    return relaxed, debug


def write_ranked(directory: Path, order: list, unrelaxed: dict, relaxed: dict) -> None:
    """ranked_<i>.pdb/.cif: the i-th best model, relaxed when it was (AlphaFold copies the relaxed PDB text)."""
    for i, name in enumerate(order):
        if name in relaxed:
            shutil.copyfile(directory / f"relaxed_{name}.pdb", directory / f"ranked_{i}.pdb")
            shutil.copyfile(directory / f"relaxed_{name}.cif", directory / f"ranked_{i}.cif")
        else:
            write_structure(directory, f"ranked_{i}", unrelaxed[name])


def rank(scores: dict) -> list:
    """Model names, best first (stable for ties)."""
    return sorted(scores, key=lambda n: scores[n], reverse=True)


def write_summary(directory: Path, scores: dict, order: list, rank_by: str, relax_debug: dict,
                  timings: dict, num_recycles: dict | None = None) -> None:
    """relax_metrics.json, timings.json and, last (the done marker), ranking_debug.json (with the recycling
    iterations each model ran, ``num_recycles``, when given)."""
    if relax_debug:
        metrics = {n: ({"remaining_violations_count": d["violations_after"]} if "violations_after" in d else {}) | d
                   for n, d in relax_debug.items()}     # AlphaFold's key, then our debug (or the error)
        write_json(directory / "relax_metrics.json", metrics, indent=1)
    write_json(directory / "timings.json", timings, indent=1)
    ranking = {RANK_LABELS[rank_by]: scores, "order": order}
    if num_recycles:
        ranking["num_recycles"] = num_recycles
    write_json(directory / DONE_MARKER, ranking, indent=4)
