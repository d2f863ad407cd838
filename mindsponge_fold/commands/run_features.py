"""``mindsponge-fold run-features``: run the network on AlphaFold-format processed features.

    mindsponge-fold run-features --features processed_features.npz --params params.npz \\
        --af-config config.json --num-recycle 1 --out out.npz [--teacher-forcing REF.npz] [--ground-truth gt.npz]

The features file holds AlphaFold's processed features (leading axis = recycling iteration, as the reference
fixture). The output npz has every output under the names of the reference's ``outputs_recycle*.npz``:
representations, structure-module outputs, head logits, ``recycle_<r>/*`` of earlier iterations, confidence
(pLDDT, PAE, pTM), and with ``--ground-truth`` the loss terms of the last iteration.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from mindsponge_fold.commands import options
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.common.fileio import save_npz, write_json


def add_arguments(parser):
    """Every option of run-features (one place: extend here)."""
    parser.add_argument("--features", required=True, help="processed features .npz (AlphaFold names)")
    parser.add_argument("--params", help="AlphaFold .npz or our .ckpt weights (default: random initialisation)")
    options.add_config_options(parser, default="model_1_ptm", af_config=True)
    parser.add_argument("--num-recycle", type=int,
                        help="recycling iterations (default: the config's model.num_recycle)")
    parser.add_argument("--teacher-forcing", metavar="REF.npz",
                        help="iteration r > 0 takes prev_* from REF's recycle_{r-1}/* instead of its own outputs")
    parser.add_argument("--ground-truth", metavar="GT.npz", help="ground-truth arrays: also write the loss terms")
    parser.add_argument("--no-bucket", action="store_true", help="do not pad N_res up to a length bucket")
    options.add_ema_option(parser)
    options.add_device_option(parser)
    parser.add_argument("--compile-cache", metavar="DIR",
                        help="cache compiled graphs here, keyed by config and shapes (default: $MSF_COMPILE_CACHE)")
    parser.add_argument("--out", required=True, help="output .npz")
    parser.add_argument("--timings", help="also write timings JSON here")


def load_npz(path, what: str) -> dict:
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such {what} file", path)
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (ValueError, OSError) as e:
        raise InputError(f"not a readable .npz {what} file ({e})", path) from None


def compute_losses(cfg, outputs: dict, features: dict, ground_truth: dict, source=None) -> dict:
    """Loss terms of the last iteration (float32, the reference's ``loss/*`` names) for the run's outputs."""
    import mindspore as ms
    from mindsponge_fold.data import feature_shapes as fs
    from mindsponge_fold.model.runner import split_iterations
    from mindsponge_fold.train.losses import AlphaFoldLoss
    last = split_iterations(features, source)[-1]
    batch = {k: v for k, v in last.items() if k in fs.INPUT_FEATURES}
    batch.update({k: v for k, v in ground_truth.items() if k in fs.TARGET_FEATURES})
    batch = {k: ms.Tensor(np.asarray(v, dtype=fs.PROCESSED_FEATURES[k].dtype)) for k, v in batch.items()}
    outs = {k: ms.Tensor(np.asarray(v, np.float32)) for k, v in outputs.items()
            if not k.startswith(("recycle_", "confidence/"))}
    loss = AlphaFoldLoss(cfg.model)
    total, terms = loss(outs, batch)
    result = {k: v.asnumpy() for k, v in terms.items()}
    result["loss/total"] = total.asnumpy()
    return result


def run(args) -> int:
    from mindsponge_fold.model.runner import ModelRunner
    cfg = options.load_config_from_args(args)
    features = load_npz(args.features, "features")
    teacher = load_npz(args.teacher_forcing, "teacher-forcing reference") if args.teacher_forcing else None
    runner = ModelRunner(cfg, args.params, use_ema=args.ema, bucket=not args.no_bucket, device=args.device,
                         compile_cache=args.compile_cache)

    def progress(r, n):
        print(f"iteration {r + 1}/{n + 1} done", file=sys.stderr, flush=True)

    outputs, timings = runner.run(features, args.num_recycle, teacher_forcing=teacher, source=args.features,
                                  on_iteration=progress)
    if args.ground_truth:
        outputs.update(compute_losses(cfg, outputs, features, load_npz(args.ground_truth, "ground-truth"),
                                      args.features))
    save_npz(args.out, outputs)
    if args.timings:
        write_json(args.timings, timings, indent=1)
    print(f"wrote {len(outputs)} arrays to {args.out} "
          f"(first call {timings.get('first_call_s', 0):.1f}s, iterations "
          f"{', '.join(f'{t:.1f}s' for t in timings['iterations_s'])})")
    return 0
