"""``mindsponge-fold predict``: FASTA -> structures with confidence, as AlphaFold's run_alphafold.py.

    mindsponge-fold predict --fasta targets.fasta --output-dir out --alignments-dir alignments \\
        --models model_1_ptm=params_model_1_ptm.npz,model_2_ptm=params_model_2_ptm.npz [--plots]

The options become a :class:`~mindsponge_fold.predict.settings.PredictSettings`; the run itself is
:func:`mindsponge_fold.predict.run.predict`.
"""
from __future__ import annotations

from mindsponge_fold.commands import options
from mindsponge_fold.predict.settings import OutputSettings, PredictSettings


def add_arguments(parser) -> None:
    options.add_fasta_option(parser)
    parser.add_argument("--features", metavar="NPZ", help="instead of --fasta: one target's raw features (AlphaFold "
                                                          "data pipeline output) or processed features (model input)")
    parser.add_argument("--name", help="target name for --features (default: its domain_name or file name)")
    parser.add_argument("--output-dir", required=True, help="one sub-directory per target is written here")
    a = parser.add_argument_group("alignments")
    options.add_alignment_input_arguments(a)
    a.add_argument("--msa", metavar="A3M|DIR",
                   help="the MSA as a ColabFold-style a3m (query first), instead of any search: one file for one "
                        "target, or a directory of <target>.a3m (templates only from --templates)")
    options.add_search_arguments(parser.add_argument_group("search tools (run for alignments not in --alignments-dir)"))
    options.add_template_hit_arguments(parser.add_argument_group(
        "templates (--templates, or search hits read with --mmcif-dir)"))
    m = parser.add_argument_group("models")
    options.add_model_arguments(m, af_config=True, help_default="the preset named as the model; for every model")
    options.add_compile_arguments(m)
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
    models = options.model_settings(args, af_config=args.af_config, bucket=not args.no_bucket,
                                    compile_cache=args.compile_cache)
    features = options.feature_settings(args, msa=args.msa, search=options.search_settings(args),
                                        template_hits=options.template_hit_settings(args))
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
