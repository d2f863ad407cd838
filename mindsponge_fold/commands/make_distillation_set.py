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
    options.add_fasta_option(parser, required=True)
    options.add_alignment_input_arguments(parser)
    parser.add_argument("--output-dir", required=True,
                        help="features/<target>.npz per kept prediction (make-mindrecord --features-dir input) "
                             "and distillation_summary.json (per target: kept or not and why, pLDDT, residues "
                             "masked)")
    options.add_model_arguments(parser, one_model=True)
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

    filt = DistillationFilter(plddt_mask_threshold=args.plddt_mask_threshold, min_mean_plddt=args.min_mean_plddt)
    settings = DistillationSettings(output_dir=args.output_dir, fasta=tuple(args.fasta),
                                    models=options.model_settings(args), inputs=options.feature_settings(args),
                                    filter=filt, max_length=args.max_length)
    summary = make_distillation_set(settings)
    kept = sum(e["kept"] for e in summary.values())
    print(f"{kept} of {len(summary)} prediction(s) kept as distillation examples in {args.output_dir}")
    return 0
