"""``mindsponge-fold train``: train or fine-tune AlphaFold 2 on MindRecord data.

    mindsponge-fold train --config train_initial --data data/train.mindrecord \\
        [--val-data data/val.mindrecord] [--out runs/initial] [--resume [auto|CKPT]] [--init-from params.npz] \\
        [--steps N] [--set train.batch_size=1 ...] [--device CPU|GPU|Ascend] \\
        [--distillation-data data/distill.mindrecord --distillation-fraction 0.75]

Data parallel: launch the same command under ``msrun`` (``scripts/train_cpu.sh``, ``train_gpu.sh``,
``train_ascend.sh``); each rank reads its shard, gradients are averaged, rank 0 writes checkpoints and logs.

Exit status: 0 when the run reached its step count, 2 on bad input (one line on stderr), 143 (128 + SIGTERM) when
SIGTERM stopped it after writing its checkpoint (unfinished: continue with ``--resume``).
"""
from __future__ import annotations

from mindsponge_fold.commands import options

STOPPED_EXIT = 143      # 128 + SIGTERM: what a shell reports for a process the signal ended; not 0 (not finished)
EPILOG = ("exit status: 0 done (the run reached its step count); 2 bad input or arguments (one line on stderr); "
          f"{STOPPED_EXIT} stopped by SIGTERM after writing its checkpoint (unfinished: continue with --resume); "
          "other non-zero: a crash. --resume alone needs a checkpoint in OUT/checkpoints (a mistyped --out is an "
          "error); --resume auto starts from step 0 when there is none; an unreadable newest checkpoint is renamed "
          "*.corrupt and the previous one used.")


def add_arguments(parser) -> None:
    options.add_config_options(parser, default="train_initial")
    parser.add_argument("--data", required=True, help="training data: a make-mindrecord --out path")
    parser.add_argument("--val-data", help="held-out data (make-mindrecord output) for periodic lDDT-Ca validation "
                                           "every train.eval_every steps")
    parser.add_argument("--distillation-data", metavar="D",
                        help="self-distillation examples (make-mindrecord output of make-distillation-set): each "
                             "example comes from D with probability --distillation-fraction, else from --data")
    parser.add_argument("--distillation-fraction", type=float, default=0.75,
                        help="probability that an example is a distillation one (default 0.75, Suppl. 1.3)")
    parser.add_argument("--out", default="train_out", help="output directory: checkpoints/, train_log.jsonl, "
                                                           "training_curve.png, config.yaml")
    parser.epilog = EPILOG
    parser.add_argument("--resume", nargs="?", const="latest", default=None, metavar="auto|CKPT",
                        help="continue from a training checkpoint: no value = the newest in OUT/checkpoints (an error "
                             "when there is none), 'auto' = the newest or, when there is none, from step 0, or a "
                             "checkpoint file; prints the checkpoint and step loaded")
    parser.add_argument("--init-from", metavar="WEIGHTS",
                        help="start from these weights (AlphaFold .npz such as params_model_1_ptm.npz, or a .ckpt) "
                             "with a fresh optimiser: fine-tuning")
    parser.add_argument("--steps", type=int, help="total number of steps (default: train.num_steps)")
    options.add_device_option(parser)
    parser.add_argument("--workers", type=int, default=2, help="data-processing workers per process")
    parser.add_argument("--dump-rank-gradients", action="store_true",
                        help="every rank writes the gradient of its first step after the data-parallel mean to "
                             "OUT/rank_<r>_step_<s>_gradients.npz (AlphaFold layout): checks the all-reduce")
    parser.add_argument("--dump-rank-weights", action="store_true",
                        help="at the end every rank (not only rank 0) writes its weights to OUT/rank_<r>_final.npz "
                             "(AlphaFold layout): checks that data-parallel ranks stayed in sync")
    options.add_progress_option(parser)


def run(args) -> int:
    from mindsponge_fold.common.config import check_precision
    from mindsponge_fold.common.errors import InputError
    from mindsponge_fold.model.params import weights_format
    from mindsponge_fold.train.loop import RunOptions, train

    if args.steps is not None and args.steps < 1:
        raise InputError(f"--steps must be >= 1, got {args.steps}")
    if not 0.0 <= args.distillation_fraction <= 1.0:
        raise InputError(f"--distillation-fraction must be in [0, 1], got {args.distillation_fraction}")
    if args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    cfg = options.load_config_from_args(args)
    args.device = options.resolve_device(args.device)
    check_precision(cfg, args.device)
    if args.init_from:
        weights_format(args.init_from)        # a file that is not weights at all: said before anything is built
    run_options = RunOptions(data=args.data, out_dir=args.out, val_data=args.val_data, resume=args.resume,
                             init_from=args.init_from, num_steps=args.steps, device=args.device,
                             progress=not args.no_progress, num_workers=args.workers,
                             dump_rank_weights=args.dump_rank_weights,
                             dump_rank_gradients=args.dump_rank_gradients,
                             distillation_data=args.distillation_data,
                             distillation_fraction=args.distillation_fraction)
    summary = train(cfg, run_options)
    if summary["world"]["rank"] == 0:
        last = summary["last"] or {}
        stopped = f" (stopped by SIGTERM: exit status {STOPPED_EXIT}, continue with --resume)"
        print(f"done: {summary['step']} steps{stopped if summary['stopped'] else ''}; "
              f"last loss {last.get('loss/total', float('nan')):.4f}; checkpoint {summary['checkpoint']}")
    return STOPPED_EXIT if summary["stopped"] else 0
