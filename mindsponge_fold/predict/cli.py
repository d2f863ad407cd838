"""``mindsponge-fold predict``: FASTA -> structures with confidence, as AlphaFold's run_alphafold.py.

    mindsponge-fold predict --fasta targets.fasta --output-dir out --alignments-dir alignments \\
        --models model_1_ptm=params_model_1_ptm.npz,model_2_ptm=params_model_2_ptm.npz [--plots]

Per target (one per FASTA record): features (precomputed alignments, searches for the missing ones, or
single-sequence) -> every model (``ModelRunner.run``) -> ranking, Amber relax, outputs (see
:mod:`mindsponge_fold.predict.outputs` for the directory layout). Everything is checked before any work starts
(sequences, weights files, search binaries and databases, alignments); errors are one line and leave nothing
half-written; finished targets are skipped on a rerun.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

from mindsponge_fold.common.errors import InputError
from mindsponge_fold.common.fileio import save_npz
from mindsponge_fold.predict import features as features_stage
from mindsponge_fold.predict import inputs, models, outputs


def add_arguments(parser) -> None:
    parser.add_argument("--fasta", action="append", default=[], metavar="FASTA",
                        help="query FASTA: one target per record (the first header word names it); may repeat")
    parser.add_argument("--features", metavar="NPZ", help="instead of --fasta: one target's raw features (AlphaFold "
                                                          "data pipeline output) or processed features (model input)")
    parser.add_argument("--name", help="target name for --features (default: its domain_name or file name)")
    parser.add_argument("--output-dir", required=True, help="one sub-directory per target is written here")
    features_stage.add_arguments(parser)
    models.add_arguments(parser)
    o = parser.add_argument_group("outputs")
    o.add_argument("--models-to-relax", choices=["best", "all", "none"], default="best",
                   help="Amber-relax the best model, all models, or none (default best, as AlphaFold 2.3)")
    o.add_argument("--rank-by", choices=["plddt", "ptm"], default=None,
                   help="ranking confidence: mean pLDDT (AlphaFold's monomer ranking) or pTM (needs *_ptm models); "
                        "default: the config's model.rank_by")
    o.add_argument("--plots", action="store_true", help="also write PNGs: pLDDT, PAE, distogram contact map")
    o.add_argument("--max-length", type=int, help="longest sequence accepted (default: the config's largest length "
                                                  "bucket)")
    o.add_argument("--allow-unknown", action="store_true",
                   help="model residue letters other than the 20 amino acids as X, unknown (no relax then)")
    o.add_argument("--save-representations", action="store_true",
                   help="keep representations/* and recycle_*/* in result_<model>.npz")
    o.add_argument("--save-processed-features", action="store_true",
                   help="also write each model's input: processed_features_<model>.npz (for run-features)")
    o.add_argument("--overwrite", action="store_true", help="predict finished targets again (default: skip them)")


def say(message: str) -> None:
    print(f"predict: {message}", file=sys.stderr, flush=True)


def check_arguments(args, specs) -> str:
    """Option combinations; returns the ranking metric."""
    if bool(args.fasta) == bool(args.features):
        raise InputError("give --fasta (one or more) or --features, not both or neither")
    if args.name and not args.features:
        raise InputError("--name goes with --features (FASTA targets are named by their headers)")
    rank_by = args.rank_by or str(specs[0].cfg.model.rank_by)
    if rank_by not in outputs.RANK_LABELS:
        raise InputError(f"ranking by {rank_by!r} is not supported (plddt or ptm)")
    no_pae = [s.name for s in specs if not s.has_pae_head]
    if rank_by == "ptm" and no_pae:
        raise InputError(f"--rank-by ptm needs the pTM head, model '{no_pae[0]}' has none (use *_ptm models)")
    if args.models_to_relax != "none":
        if args.allow_unknown:
            raise InputError("--allow-unknown cannot be combined with relax (Amber needs the 20 standard amino "
                             "acids): add --models-to-relax none")
        try:
            import openmm  # noqa: F401
            import pdbfixer  # noqa: F401
        except ImportError as e:
            raise InputError(f"relax needs OpenMM and PDBFixer ({e}); install them (scripts/setup.sh) or pass "
                             f"--models-to-relax none") from None
    return rank_by


def max_length(args, specs) -> int | None:
    if args.max_length is not None:
        return args.max_length
    if args.no_bucket:
        return None
    return min(max(int(b) for b in s.cfg.buckets.num_res) for s in specs)


def load_targets(args, specs) -> list:
    limit = max_length(args, specs)
    if args.features:
        return [inputs.read_features_target(args.features, args.name, limit, args.allow_unknown)]
    return inputs.read_fasta_targets(args.fasta, limit, args.allow_unknown)


def predict_target(target, specs, builder, work: Path, args, rank_by: str) -> dict:
    """Everything of one target into ``work`` (its temporary directory). Returns the summary."""
    timings = {}
    t0 = time.perf_counter()
    raw = builder.raw_features(target, work)
    timings["features"] = time.perf_counter() - t0
    if not target.processed:
        save_npz(work / "features.npz", raw)
        say(f"{target.name}: features in {timings['features']:.1f} s ({raw['msa'].shape[0]} MSA rows, "
            f"{raw['template_aatype'].shape[0]} templates)")
    results, proteins, scores = {}, {}, {}
    for index, spec in enumerate(specs):
        t0 = time.perf_counter()
        processed = features_stage.processed_features(target, raw, spec.cfg, index + args.seed * len(specs))
        timings[f"process_features_{spec.name}"] = time.perf_counter() - t0
        if args.save_processed_features:
            save_npz(work / f"processed_features_{spec.name}.npz", processed)

        def progress(r, n, name=spec.name):
            say(f"{target.name} {name}: iteration {r + 1}/{n + 1} done")

        result, t = models.run_model(spec, processed, target.source, progress)
        for key in ("predict_and_compile", "compile", "predict"):
            timings[f"{key}_{spec.name}"] = t[key]
        proteins[spec.name] = outputs.prediction_protein(processed, result)
        outputs.write_model_outputs(work, spec.name, proteins[spec.name], result, args.save_representations)
        results[spec.name] = result
        scores[spec.name] = outputs.ranking_confidence(result, rank_by)
        say(f"{target.name} {spec.name}: mean pLDDT {result['confidence/plddt'].mean():.2f}"
            + (f", pTM {float(result['confidence/ptm']):.3f}" if "confidence/ptm" in result else "")
            + f" ({t['predict_and_compile']:.1f} s, compile {t['compile']:.1f} s)")
    order = outputs.rank(scores)
    to_relax = {"best": order[:1], "all": order, "none": []}[args.models_to_relax]
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
    if args.plots:
        from mindsponge_fold.predict.plots import write_plots
        write_plots(work / "plots", target.name, results)
    outputs.write_summary(work, scores, order, rank_by, relax_debug, timings)
    return {"order": order, "scores": scores}


def run(args) -> int:
    specs = models.resolve_models(args)
    rank_by = check_arguments(args, specs)
    targets = load_targets(args, specs)
    out_dir = Path(args.output_dir)
    todo = [t for t in targets if args.overwrite or not outputs.is_finished(out_dir, t.name)]
    for t in targets:
        if t not in todo:
            say(f"{t.name}: already finished in {out_dir / t.name}, skipped (--overwrite to redo)")
    if not todo:
        return 0
    builder = features_stage.FeatureBuilder(args)   # checks search binaries and databases
    builder.num_targets = len(targets)
    inputs.check_alignments_available(todo, args.alignments_dir, builder.can_search, args.single_sequence)
    shared_runners: dict = {}
    for spec in specs:
        say(f"loading model {spec.describe()}")
        spec.runner = models.load_runner(spec, args, shared_runners)
    for i, target in enumerate(todo, start=1):
        say(f"[{i}/{len(todo)}] {target.name}: {len(target.sequence)} residues")
        with outputs.target_directory(out_dir, target.name) as work:
            summary = predict_target(target, specs, builder, work, args, rank_by)
        best = summary["order"][0]
        say(f"{target.name}: done, best {best} ({rank_by} {summary['scores'][best]:.3f}) -> "
            f"{out_dir / target.name}/ranked_0.pdb")
    print(f"predictions in {out_dir.resolve()} ({len(todo)} target(s) predicted, "
          f"{len(targets) - len(todo)} skipped)")
    return 0
