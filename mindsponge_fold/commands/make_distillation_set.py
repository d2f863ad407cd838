"""``mindsponge-fold make-distillation-set``: FASTA + alignments -> self-distillation examples (Suppl. 1.3).

    mindsponge-fold make-distillation-set --fasta uniclust_reps.fasta --alignments-dir alignments \\
        --models model_1=params_model_1.npz --output-dir distill [--plddt-mask-threshold 50] [--min-mean-plddt 0]
    mindsponge-fold make-mindrecord --features-dir distill/features --out data/distill.mindrecord
    mindsponge-fold train --data data/train.mindrecord --distillation-data data/distill.mindrecord

The run is :func:`mindsponge_fold.predict.distillation.make_distillation_set`; the labels are made by
:mod:`mindsponge_fold.data.distillation`. The MSA subsampling of distillation examples happens at training time
(config ``data.train.max_distillation_msa``, default 1000).
"""
from __future__ import annotations

from mindsponge_fold.commands import options


def add_arguments(parser) -> None:
    parser.add_argument("--fasta", action="append", required=True, metavar="FASTA",
                        help="sequences: one target per record (the first header word names it); may repeat")
    parser.add_argument("--alignments-dir", help="precomputed alignments: DIR/<target>/ with AlphaFold's file names")
    parser.add_argument("--single-sequence", action="store_true",
                        help="targets without alignments use the query alone as the MSA")
    parser.add_argument("--output-dir", required=True,
                        help="features/<target>.npz per kept prediction (make-mindrecord --features-dir input) "
                             "and distillation_summary.json (per target: kept or not and why, pLDDT, residues "
                             "masked)")
    parser.add_argument("--models", action="append", default=[], metavar="NAME[=WEIGHTS]",
                        help="the one model that predicts, e.g. model_1=params_model_1.npz (or a training .ckpt)")
    parser.add_argument("--params-dir", help="weights of a model given without a path: DIR/params_NAME.npz")
    parser.add_argument("--random-weights", action="store_true", help="seeded random weights (tests, demos)")
    options.add_config_options(parser, aliases=(options.PRESET_ALIAS,), help_default="the preset named as the model")
    parser.add_argument("--num-recycle", type=int, help="recycling iterations (default: the config's)")
    parser.add_argument("--seed", type=int, default=0, help="feature-processing and random-weights seed")
    options.add_ema_option(parser)
    options.add_device_option(parser)
    parser.add_argument("--max-length", type=int, help="longest sequence accepted (default: no limit)")
    parser.add_argument("--plddt-mask-threshold", type=float, default=50.0,
                        help="residues with pLDDT below this are masked out of the losses (default 50, OpenFold's "
                             "reproduction of Suppl. 1.3)")
    parser.add_argument("--min-mean-plddt", type=float, default=0.0,
                        help="drop predictions whose mean pLDDT is below this (default 0: keep every prediction "
                             "with at least one residue above --plddt-mask-threshold)")


def run(args) -> int:
    from mindsponge_fold.data.distillation import DistillationFilter
    from mindsponge_fold.predict.distillation import DistillationSettings, make_distillation_set
    from mindsponge_fold.predict.settings import FeatureSettings, ModelSettings

    filt = DistillationFilter(plddt_mask_threshold=args.plddt_mask_threshold, min_mean_plddt=args.min_mean_plddt)
    models = ModelSettings(models=tuple(args.models), params_dir=args.params_dir, random_weights=args.random_weights,
                           preset=args.config, overrides=tuple(args.overrides), num_recycle=args.num_recycle,
                           seed=args.seed, use_ema=args.ema, device=options.resolve_device(args.device))
    settings = DistillationSettings(output_dir=args.output_dir, fasta=tuple(args.fasta), models=models,
                                    inputs=FeatureSettings(alignments_dir=args.alignments_dir,
                                                           single_sequence=args.single_sequence),
                                    filter=filt, max_length=args.max_length)
    summary = make_distillation_set(settings)
    kept = sum(e["kept"] for e in summary.values())
    print(f"{kept} of {len(summary)} prediction(s) kept as distillation examples in {args.output_dir}")
    return 0
