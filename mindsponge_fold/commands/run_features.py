"""``mindsponge-fold run-features``: run the network on AlphaFold-format processed features.

    mindsponge-fold run-features --features processed_features.npz --params params.npz \\
        --af-config config.json --num-recycle 1 --out out.npz [--teacher-forcing REF.npz] [--ground-truth gt.npz] \
        [--gradients grads.npz]

The features file holds AlphaFold's processed features (leading axis = recycling iteration, as the reference
fixture). The output npz has every output under the names of the reference's ``outputs_recycle*.npz``:
representations, structure-module outputs, head logits, ``recycle_<r>/*`` of earlier iterations, confidence
(pLDDT, PAE, pTM), and with ``--ground-truth`` the loss terms of the last iteration.

``--gradients G.npz`` (needs ``--ground-truth``) also writes the training gradients of the last iteration K:
d loss/total / d weight as ``grad/<AlphaFold parameter name>`` for every weight, plus the ``loss/*`` terms of that
pass, computed by the training step's own loss net and gradient graph (or its host recomputation, per
``model.global_config.use_remat``) with dropout off, ``prev_*`` from the teacher's ``recycle_{K-1}/*`` (else from
this run's own iteration K-1; zeros for K = 0). This is what the reference fixture's ``gradients.npz`` holds.
"""
from __future__ import annotations

import sys

import numpy as np

from mindsponge_fold.commands import options
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.common.fileio import check_output_file, load_npz, save_npz, write_json


def add_arguments(parser):
    """Every option of run-features (one place: extend here)."""
    parser.add_argument("--features", required=True, help="processed features .npz (AlphaFold names)")
    parser.add_argument("--params", help="AlphaFold .npz or our .ckpt weights (default: random initialisation)")
    options.add_config_options(parser, default="model_1_ptm", af_config=True)
    options.add_num_recycle_option(parser)
    parser.add_argument("--teacher-forcing", metavar="REF.npz",
                        help="iteration r > 0 takes prev_* from REF's recycle_{r-1}/* instead of its own outputs")
    parser.add_argument("--ground-truth", metavar="GT.npz", help="ground-truth arrays: also write the loss terms")
    parser.add_argument("--gradients", metavar="G.npz",
                        help="also write d loss/total / d weight of the last iteration (needs --ground-truth)")
    options.add_ema_option(parser)
    options.add_device_option(parser)
    options.add_compile_arguments(parser)
    parser.add_argument("--out", required=True, help="output .npz")
    parser.add_argument("--timings", help="also write timings JSON here")


def check_ground_truth(ground_truth: dict, iteration: dict, source) -> None:
    """The loss labels of ``--ground-truth`` (the reference fixture's ground_truth.npz names) are all there, shaped
    for the features' residues: checked before the network is built, not when the loss is taken after the run."""
    from mindsponge_fold.data import feature_shapes as fs
    needed = [k for k in fs.TARGET_FEATURES if k != "use_clamped_fape"]
    labels = {k: v for k, v in ground_truth.items() if k in fs.TARGET_FEATURES}
    missing = [k for k in needed if k not in labels]
    if missing:
        raise InputError(f"not ground-truth labels for the loss: {len(missing)} array(s) missing: "
                         f"{', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}", source)
    fs.validate({"aatype": iteration["aatype"], **labels}, spec=fs.PROCESSED_FEATURES, source=source)


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


def gradient_prev(runner, outputs: dict, teacher: dict | None, k: int, n_res: int) -> tuple:
    """prev_* of iteration ``k``: the teacher's ``recycle_{k-1}/*`` if given, else this run's own; zeros for k = 0."""
    if k == 0:
        return runner.zero_prev(n_res)
    source = teacher if teacher is not None else outputs
    return tuple(np.asarray(source[f"recycle_{k - 1}/{name}"], np.float32)
                 for name in ("final_atom_positions", "msa_first_row", "pair"))


def write_gradients(cfg, args, runner, features: dict, outputs: dict, teacher: dict | None,
                    ground_truth: dict) -> None:
    from mindsponge_fold.model.runner import split_iterations
    from mindsponge_fold.train.gradients import iteration_gradients
    iters = split_iterations(features, args.features)
    k = int(cfg.model.num_recycle if args.num_recycle is None else args.num_recycle)
    iteration = iters[min(k, len(iters) - 1)]
    prev = gradient_prev(runner, outputs, teacher, k, int(np.shape(iteration["aatype"])[0]))
    grads = iteration_gradients(cfg, args.params, iteration, ground_truth, prev)
    save_npz(args.gradients, grads)
    print(f"wrote {sum(n.startswith('grad/') for n in grads)} gradients of iteration {k} to {args.gradients} "
          f"(loss/total {float(grads['loss/total']):.6g})")


def run(args) -> int:
    from mindsponge_fold.common.config import check_precision
    from mindsponge_fold.model.runner import ModelRunner, check_model_inputs
    cfg = options.load_config_from_args(args)
    if args.num_recycle is not None and args.num_recycle < 0:
        raise InputError(f"--num-recycle must be >= 0, got {args.num_recycle}")
    for path in (args.out, args.timings, args.gradients):
        if path:
            check_output_file(path)
    if args.gradients and not args.ground_truth:
        raise InputError("--gradients needs --ground-truth (the loss is differentiated)", args.gradients)
    if args.gradients and args.ema:
        raise InputError("--gradients are taken with respect to the live weights, not the EMA ones: drop --ema",
                         args.gradients)
    args.device = options.resolve_device(args.device)
    check_precision(cfg, args.device)
    features = load_npz(args.features, "features")
    iterations = check_model_inputs(features, cfg, args.features)        # before the network is built and compiled
    if args.params:
        from mindsponge_fold.model.params import weights_format
        weights_format(args.params)
    teacher = load_npz(args.teacher_forcing, "teacher-forcing reference") if args.teacher_forcing else None
    ground_truth = load_npz(args.ground_truth, "ground-truth") if args.ground_truth else None
    if ground_truth is not None:
        check_ground_truth(ground_truth, iterations[0], args.ground_truth)
    runner = ModelRunner(cfg, args.params, use_ema=args.ema, bucket=not args.no_bucket, device=args.device,
                         compile_cache=args.compile_cache)

    def progress(r, n):
        print(f"iteration {r + 1}/{n + 1} done", file=sys.stderr, flush=True)

    outputs, timings = runner.run(features, args.num_recycle, teacher_forcing=teacher, source=args.features,
                                  on_iteration=progress)
    if ground_truth is not None:
        outputs.update(compute_losses(cfg, outputs, features, ground_truth, args.features))
    save_npz(args.out, outputs)
    if args.timings:
        write_json(args.timings, timings, indent=1)
    if args.gradients:
        # (the runner stays alive: deleting it let a new Cell reuse a freed object's id, and MindSpore 2.10 then
        # compiled a stale cached graph for it: "Function __init__ takes 4 positional arguments, but 8 were given")
        write_gradients(cfg, args, runner, features, outputs, teacher, ground_truth)
    print(f"wrote {len(outputs)} arrays to {args.out} "
          f"(first call {timings.get('first_call_s', 0):.1f}s, iterations "
          f"{', '.join(f'{t:.1f}s' for t in timings['iterations_s'])})")
    return 0
