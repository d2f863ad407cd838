"""The ``predict`` run: FASTA -> structures with confidence, as AlphaFold's run_alphafold.py.

Per target (one per FASTA record): features (precomputed alignments, searches for the missing ones, or
single-sequence) -> every model (``ModelRunner.run``) -> ranking, Amber relax, outputs (see
:mod:`mindsponge_fold.predict.outputs` for the directory layout). Everything is checked before any work starts
(sequences, weights files, search binaries and databases, alignments); errors are one line and leave nothing
half-written; finished targets are skipped on a rerun, and models an earlier (stopped, or finished with other
models) run of a target left are reused (:mod:`~mindsponge_fold.predict.resume`). :func:`predict` takes a
:class:`~mindsponge_fold.predict.settings.PredictSettings` (the command, :mod:`mindsponge_fold.commands.predict`,
builds it from the options).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from mindsponge_fold.common.errors import InputError
from mindsponge_fold.common.fileio import check_output_dir, save_npz
from mindsponge_fold.predict import features as features_stage
from mindsponge_fold.predict import inputs, models, outputs, resume
from mindsponge_fold.predict.settings import PredictSettings


def say(message: str) -> None:
    print(f"predict: {message}", file=sys.stderr, flush=True)


def check_settings(settings: PredictSettings, specs) -> str:
    """Option combinations; returns the ranking metric."""
    out = settings.outputs
    if bool(settings.fasta) == bool(settings.features):
        raise InputError("give --fasta (one or more) or --features, not both or neither")
    if settings.name and not settings.features:
        raise InputError("--name goes with --features (FASTA targets are named by their headers)")
    rank_by = out.rank_by or str(specs[0].cfg.model.rank_by)
    if rank_by not in outputs.RANK_LABELS:
        raise InputError(f"ranking by {rank_by!r} is not supported (plddt or ptm)")
    no_pae = [s.name for s in specs if not s.has_pae_head]
    if rank_by == "ptm" and no_pae:
        raise InputError(f"--rank-by ptm needs the pTM head, model '{no_pae[0]}' has none (use *_ptm models)")
    if out.models_to_relax != "none":
        if out.allow_unknown:
            raise InputError("--allow-unknown cannot be combined with relax (Amber needs the 20 standard amino "
                             "acids): add --models-to-relax none")
        try:
            import openmm  # noqa: F401
            import pdbfixer  # noqa: F401
        except ImportError as e:
            raise InputError(f"relax needs OpenMM and PDBFixer ({e}); install them (scripts/setup.sh) or pass "
                             f"--models-to-relax none") from None
    return rank_by


def max_length(settings: PredictSettings, specs) -> int | None:
    if settings.outputs.max_length is not None:
        return settings.outputs.max_length
    if not settings.models.bucket:
        return None
    return min(max(int(b) for b in s.cfg.buckets.num_res) for s in specs)


def load_targets(settings: PredictSettings, specs) -> list:
    limit = max_length(settings, specs)
    allow_unknown = settings.outputs.allow_unknown
    if settings.features:
        target = inputs.read_features_target(settings.features, settings.name, limit, allow_unknown)
        if target.processed:
            from mindsponge_fold.model.runner import check_model_inputs
            for spec in specs:
                try:
                    check_model_inputs(target.features, spec.cfg, target.source)
                except InputError as e:
                    raise InputError(f"model '{spec.name}': {e.problem}", e.path) from None
        return [target]
    return inputs.read_fasta_targets(settings.fasta, limit, allow_unknown)


def predict_target(target, specs, builder, work: Path, settings: PredictSettings, rank_by: str,
                   earlier=()) -> dict:
    """Everything of one target into ``work`` (its temporary directory), reusing the outputs of models that one of
    the ``earlier`` directories holds for the same inputs (:mod:`.resume`). Returns the summary."""
    out = settings.outputs
    timings = {}
    t0 = time.perf_counter()
    raw = builder.raw_features(target, work)
    timings["features"] = time.perf_counter() - t0
    if not target.processed:
        save_npz(work / "features.npz", raw)
        n_templates = raw["template_aatype"].shape[0] if "template_aatype" in raw else 0
        say(f"{target.name}: features in {timings['features']:.1f} s ({raw['msa'].shape[0]} MSA rows, "
            f"{n_templates} templates)")
    seeds = {spec.name: index + settings.models.seed * len(specs) for index, spec in enumerate(specs)}
    digest = resume.features_digest(raw)
    fingerprints = {s.name: resume.model_fingerprint(s, settings, digest, seeds[s.name]) for s in specs}
    resume.write_run_record(work, settings, specs, seeds, fingerprints)
    results, proteins, scores, recycles = {}, {}, {}, {}
    for spec in specs:
        t0 = time.perf_counter()
        processed = features_stage.processed_features(target, raw, spec.cfg, seeds[spec.name])
        timings[f"process_features_{spec.name}"] = time.perf_counter() - t0
        if out.save_processed_features:
            save_npz(work / f"processed_features_{spec.name}.npz", processed)
        reused = resume.reuse_model(earlier, spec.name, fingerprints[spec.name], work)
        if reused is None:
            def progress(r, n, name=spec.name):
                say(f"{target.name} {name}: iteration {r + 1}/{n + 1} done")

            result, t = models.run_model(spec, processed, target.source, progress, seeds[spec.name])
            for key in ("predict_and_compile", "compile", "predict"):
                timings[f"{key}_{spec.name}"] = t[key]
        else:
            result, source = reused
        proteins[spec.name] = outputs.prediction_protein(processed, result)
        results[spec.name] = result
        scores[spec.name] = outputs.ranking_confidence(result, rank_by)
        if "num_recycles" in result:
            recycles[spec.name] = int(result["num_recycles"])
        if reused is not None:
            say(f"{target.name} {spec.name}: reused the outputs of an earlier run in {source} (same config, weights "
                f"and features)")
            continue
        outputs.write_model_outputs(work, spec.name, proteins[spec.name], result, out.save_representations)
        planned = int(spec.cfg.model.num_recycle)
        if spec.name in recycles and recycles[spec.name] < planned:
            say(f"{target.name} {spec.name}: recycling stopped early after {recycles[spec.name]} of {planned} "
                f"recycles (CA distance change <= model.recycle_early_stop_tolerance "
                f"{spec.cfg.model.recycle_early_stop_tolerance:g})")
        say(f"{target.name} {spec.name}: mean pLDDT {result['confidence/plddt'].mean():.2f}"
            + (f", pTM {float(result['confidence/ptm']):.3f}" if "confidence/ptm" in result else "")
            + f" ({t['predict_and_compile']:.1f} s, compile {t['compile']:.1f} s)")
    order = outputs.rank(scores)
    to_relax = {"best": order[:1], "all": order, "none": []}[out.models_to_relax]
    relaxed, relax_debug = {}, {}
    for name in to_relax:
        say(f"{target.name} {name}: Amber relax ...")
        t0 = time.perf_counter()
        spec = next(s for s in specs if s.name == name)
        try:
            relaxed[name], relax_debug[name] = outputs.relax_model(work, name, proteins[name], spec.cfg)
        except Exception as e:  # noqa: BLE001 -- a failed minimisation must not discard the model's predictions
            problem = (str(e).splitlines() or [type(e).__name__])[0][:300]
            relax_debug[name] = {"error": f"{type(e).__name__}: {problem}"}
            say(f"{target.name} {name}: WARNING relax failed ({relax_debug[name]['error']}); ranked files use the "
                f"unrelaxed model")
            continue
        finally:
            timings[f"relax_{name}"] = time.perf_counter() - t0
        say(f"{target.name} {name}: relaxed in {timings[f'relax_{name}']:.1f} s, violating residues "
            f"{relax_debug[name]['violations_before']} -> {relax_debug[name]['violations_after']}")
    outputs.write_ranked(work, order, proteins, relaxed)
    if out.plots:
        from mindsponge_fold.predict.plots import write_plots
        write_plots(work / "plots", target.name, results)
    outputs.write_summary(work, scores, order, rank_by, relax_debug, timings, recycles)
    return {"order": order, "scores": scores}


def predict(settings: PredictSettings) -> int:
    """Predict every target of ``settings``; returns the number of targets predicted (finished ones skipped)."""
    out_dir = Path(settings.output_dir)
    check_output_dir(out_dir, "--output-dir")
    specs = models.resolve_models(settings.models)
    rank_by = check_settings(settings, specs)
    targets = load_targets(settings, specs)
    names = [s.name for s in specs]
    todo = []
    for t in targets:
        done = None if settings.outputs.overwrite else outputs.finished_models(out_dir, t.name)
        if done is None:
            todo.append(t)
        elif sorted(done) == sorted(names):
            say(f"{t.name}: already finished in {out_dir / t.name}, skipped (--overwrite to redo)")
        else:
            todo.append(t)
            say(f"{t.name}: finished in {out_dir / t.name} with models {', '.join(done)}; predicting it again for "
                f"{', '.join(names)} (models with the same config, weights and features are reused)")
    if not todo:
        return 0
    inputs.check_msa_option(settings, len(targets))
    builder = features_stage.FeatureBuilder(settings.inputs)   # checks search binaries and databases
    builder.num_targets = len(targets)
    if not builder.msa:
        inputs.check_alignments_available(todo, builder.alignments_dir, builder.can_search, builder.single_sequence)
    for target in todo:             # every target's alignments parsed now: a bad file of target 2 stops no run midway
        builder.check_target(target)
    shared_runners: dict = {}
    for spec in specs:
        say(f"loading model {spec.describe()}")
        spec.runner = models.load_runner(spec, settings.models, shared_runners)
    for i, target in enumerate(todo, start=1):
        say(f"[{i}/{len(todo)}] {target.name}: {len(target.sequence)} residues")
        earlier = [] if settings.outputs.overwrite else outputs.earlier_outputs(out_dir, target.name)
        work = None
        try:
            with outputs.target_directory(out_dir, target.name) as work:
                summary = predict_target(target, specs, builder, work, settings, rank_by, earlier)
        except BaseException:
            kept = [m for m in names if (work / f"result_{m}.npz").is_file()] if work and work.is_dir() else []
            if kept:
                say(f"{target.name}: stopped; the finished model(s) {', '.join(kept)} are kept in {work} and reused "
                    f"by a rerun")
            raise
        best = summary["order"][0]
        say(f"{target.name}: done, best {best} ({rank_by} {summary['scores'][best]:.3f}) -> "
            f"{out_dir / target.name}/ranked_0.pdb")
    print(f"predictions in {out_dir.resolve()} ({len(todo)} target(s) predicted, "
          f"{len(targets) - len(todo)} skipped)")
    return len(todo)
