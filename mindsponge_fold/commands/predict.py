"""``mindsponge-fold predict``: FASTA -> structures with confidence, as AlphaFold's run_alphafold.py.

    mindsponge-fold predict --fasta targets.fasta --output-dir out --alignments-dir alignments \\
        --models model_1_ptm=params_model_1_ptm.npz,model_2_ptm=params_model_2_ptm.npz [--plots]

The options become a :class:`~mindsponge_fold.predict.settings.PredictSettings`; the run itself is
:func:`mindsponge_fold.predict.run.predict`.
"""
from __future__ import annotations

from mindsponge_fold.commands import options
from mindsponge_fold.predict.settings import (DEFAULT_MODELS, FeatureSettings, ModelSettings, OutputSettings,
                                              PredictSettings)


def add_arguments(parser) -> None:
    parser.add_argument("--fasta", action="append", default=[], metavar="FASTA",
                        help="query FASTA: one target per record (the first header word names it); may repeat")
    parser.add_argument("--features", metavar="NPZ", help="instead of --fasta: one target's raw features (AlphaFold "
                                                          "data pipeline output) or processed features (model input)")
    parser.add_argument("--name", help="target name for --features (default: its domain_name or file name)")
    parser.add_argument("--output-dir", required=True, help="one sub-directory per target is written here")
    a = parser.add_argument_group("alignments")
    a.add_argument("--alignments-dir", help="precomputed alignments: DIR/<target>/ per target with AlphaFold's file "
                                            "names (uniref90_hits.sto, bfd_uniclust_hits.a3m, mgnify_hits.sto, "
                                            "pdb70_hits.hhr / pdb_hits.sto), or DIR itself for a single target")
    a.add_argument("--msa", metavar="A3M|DIR",
                   help="the MSA as a ColabFold-style a3m (query first), instead of any search: one file for one "
                        "target, or a directory of <target>.a3m (templates only from --templates)")
    a.add_argument("--single-sequence", action="store_true",
                   help="no MSA search: the query alone is the MSA (targets without alignments)")
    options.add_search_arguments(parser.add_argument_group("search tools (run for alignments not in --alignments-dir)"))
    options.add_template_hit_arguments(parser.add_argument_group(
        "templates (--templates, or search hits read with --mmcif-dir)"))
    m = parser.add_argument_group("models")
    m.add_argument("--models", action="append", default=[], metavar="NAME[=WEIGHTS],...",
                   help=f"models to run, e.g. model_1_ptm=params_model_1_ptm.npz,model_2_ptm=... (default: "
                        f"{DEFAULT_MODELS}); WEIGHTS = AlphaFold .npz or our .ckpt")
    m.add_argument("--params-dir", help="weights of entries without a path: DIR/params_NAME.npz")
    m.add_argument("--random-weights", action="store_true",
                   help="entries without weights get seeded random weights (demos, tests)")
    # no --model alias here: beside --models it would be a trap
    options.add_config_options(m, aliases=(options.PRESET_ALIAS,), af_config=True,
                               help_default="the preset named as the model; for every model")
    m.add_argument("--num-recycle", type=int, help="recycling iterations (default: the config's)")
    m.add_argument("--seed", type=int, default=0,
                   help="feature-processing seed (model i uses i + seed * num_models, as AlphaFold; also its "
                        "dropout seed with --set model.global_config.eval_dropout=true) and random weights seed")
    options.add_ema_option(m)
    m.add_argument("--no-bucket", action="store_true", help="do not pad N_res up to a length bucket")
    options.add_device_option(m)
    m.add_argument("--compile-cache", metavar="DIR",
                   help="cache compiled graphs here, keyed by config and shapes (default: $MSF_COMPILE_CACHE)")
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
    o.add_argument("--overwrite", action="store_true",
                   help="predict finished targets again, reusing nothing (default: skip a target finished with the "
                        "same models; reuse each model whose outputs an earlier run of the target left with the same "
                        "config, weights and features)")


def settings_from_args(args) -> PredictSettings:
    """The typed settings of parsed predict options."""
    models = ModelSettings(
        models=tuple(args.models), params_dir=args.params_dir, random_weights=args.random_weights,
        preset=args.config, af_config=args.af_config, overrides=tuple(args.overrides), num_recycle=args.num_recycle,
        seed=args.seed, use_ema=args.ema, bucket=not args.no_bucket, device=options.resolve_device(args.device),
        compile_cache=args.compile_cache)
    features = FeatureSettings(alignments_dir=args.alignments_dir, single_sequence=args.single_sequence, msa=args.msa,
                               search=options.search_settings(args), template_hits=options.template_hit_settings(args))
    outputs = OutputSettings(
        models_to_relax=args.models_to_relax, rank_by=args.rank_by, plots=args.plots, max_length=args.max_length,
        allow_unknown=args.allow_unknown, save_representations=args.save_representations,
        save_processed_features=args.save_processed_features, overwrite=args.overwrite)
    return PredictSettings(output_dir=args.output_dir, fasta=tuple(args.fasta), features=args.features,
                           name=args.name, models=models, inputs=features, outputs=outputs,
                           command=tuple(getattr(args, "command_line", None) or ()))


def run(args) -> int:
    from mindsponge_fold.predict.run import predict
    predict(settings_from_args(args))
    return 0
