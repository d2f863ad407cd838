"""``make-distillation-set``: predict each FASTA target with one model and keep the confident predictions as
self-distillation examples (Suppl. 1.3; labels as in :mod:`mindsponge_fold.data.distillation`).

Per target: raw features (precomputed alignments, as ``predict``) -> the model -> the confidence filter -> the
labelled example ``<out>/features/<name>.npz`` (written atomically) -> its entry in ``<out>/distillation_summary.json``
(kept or not and why, mean and per-residue pLDDT, residues masked; a rerun skips the targets listed there).
``make-mindrecord --features-dir <out>/features`` converts the kept examples.
"""
from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

from mindsponge_fold.common.errors import InputError
from mindsponge_fold.common.fileio import check_output_dir, save_npz, write_json
from mindsponge_fold.data.distillation import DistillationFilter, distillation_example
from mindsponge_fold.predict import features as features_stage
from mindsponge_fold.predict import inputs, models
from mindsponge_fold.predict.settings import FeatureSettings, ModelSettings

SUMMARY, FEATURES = "distillation_summary.json", "features"


@dataclasses.dataclass(frozen=True)
class DistillationSettings:
    output_dir: str
    fasta: tuple
    models: ModelSettings                     # exactly one model
    inputs: FeatureSettings = FeatureSettings()
    filter: DistillationFilter = DistillationFilter()
    max_length: int | None = None


def say(message: str) -> None:
    print(f"make-distillation-set: {message}", file=sys.stderr, flush=True)


def make_distillation_set(settings: DistillationSettings) -> dict:
    """Run every target; returns ``{name: {"kept": bool, "reason": str, "mean_plddt": float, "masked": int}}``."""
    out = Path(settings.output_dir)
    check_output_dir(out, "--output-dir")
    specs = models.resolve_models(settings.models)
    if len(specs) != 1:
        raise InputError(f"--models: give exactly one model for make-distillation-set, got {len(specs)}")
    spec = specs[0]
    targets = inputs.read_fasta_targets(settings.fasta, settings.max_length)
    builder = features_stage.FeatureBuilder(settings.inputs)
    builder.num_targets = len(targets)
    if not builder.msa:
        inputs.check_alignments_available(targets, builder.alignments_dir, builder.can_search,
                                          builder.single_sequence)
    for target in targets:
        builder.check_target(target)
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / SUMMARY
    summary = {}
    if summary_path.exists():
        import json
        try:
            summary = json.loads(summary_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError("not a make-distillation-set summary (invalid JSON); delete it to start over",
                             summary_path) from None
    say(f"loading model {spec.describe()}")
    spec.runner = models.load_runner(spec, settings.models)
    for i, target in enumerate(targets, start=1):
        if target.name in summary and (not summary[target.name]["kept"] or
                                       (out / FEATURES / f"{target.name}.npz").exists()):
            say(f"[{i}/{len(targets)}] {target.name}: done in an earlier run, skipped")
            continue
        with tempfile.TemporaryDirectory(dir=out, prefix=f".{target.name}.work-") as work:
            raw = builder.raw_features(target, Path(work))
        processed = features_stage.processed_features(target, raw, spec.cfg, settings.models.seed)
        result, _ = models.run_model(spec, processed, target.source)
        plddt = np.asarray(result["confidence/plddt"], np.float64)[:len(target.sequence)]
        keep, reason = settings.filter.verdict(plddt)
        entry = {"kept": keep, "reason": reason, "mean_plddt": float(plddt.mean()),
                 "masked": int((plddt < settings.filter.plddt_mask_threshold).sum()), "residues": len(plddt),
                 "plddt": [round(float(x), 3) for x in plddt]}
        if keep:
            example = distillation_example(raw, result["structure_module/final_atom_positions"],
                                           result["structure_module/final_atom_mask"], plddt,
                                           settings.filter.plddt_mask_threshold)
            (out / FEATURES).mkdir(exist_ok=True)
            save_npz(out / FEATURES / f"{target.name}.npz", example)
        summary[target.name] = entry
        write_json(summary_path, summary, indent=1)
        say(f"[{i}/{len(targets)}] {target.name}: {'kept' if keep else 'dropped'} ({reason}; "
            f"{entry['masked']} of {entry['residues']} residues masked)")
    return summary
