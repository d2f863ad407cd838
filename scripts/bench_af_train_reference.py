#!/usr/bin/env python
"""AlphaFold-side training step for scripts/bench_train.py. Runs INSIDE the AlphaFold reference venv (it imports the
``alphafold`` package of ``alphafold-colabfold==2.3.27``, jax and haiku; nothing of it is copied here).

One gradient iteration of AlphaFold's training step: ``jax.value_and_grad`` of ``loss/total`` of
``modules.AlphaFoldIteration`` (``is_training=True``, ``compute_loss=True``, dropout on unless ``--deterministic``,
``global_config.use_remat`` as given) with respect to every parameter, jit-compiled, on one batch (processed features
of the gradient iteration + ground truth, a leading ensemble axis of 1, recycled inputs zero: no recycling
iterations before it, like ``train.max_recycle=0`` on our side). Prints one JSON line: first call (compile + run),
steady step (best of ``--steps - 1`` further calls), peak RSS, loss and gradient global norm.

``--optimizer``: the rest of a training step as well, the same work as ours (Suppl. 1.11.3/1.11.7): the gradient
clipped to global norm ``--clip`` (0.1), Adam (lr 1e-3, betas 0.9/0.999, eps 1e-6) and the EMA of the weights (decay
0.999), written here with jax (AlphaFold's release has no optimiser), one jit-compiled update with the parameters,
moments and EMA donated (updated in place).

    $AF_VENV/bin/python scripts/bench_af_train_reference.py --params P.npz --batch B.npz --model model_1_ptm \\
        [--set key=JSON ...] [--remat] [--steps 3]
"""
import argparse
import json
import resource
import time

import numpy as np

import bench_common   # this script's directory is first on sys.path


def load_config(args):
    from alphafold.model import config as af_config
    cfg = af_config.model_config(args.model)
    bench_common.set_config_values(cfg, args.set)
    cfg.model.global_config.use_remat = bool(args.remat)
    cfg.model.global_config.deterministic = bool(args.deterministic)
    return cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", required=True, help="flat AlphaFold-layout weights (.npz)")
    ap.add_argument("--batch", required=True, help="features + ground truth of the gradient iteration (.npz)")
    ap.add_argument("--model", default="model_1_ptm")
    ap.add_argument("--set", action="append", default=[], help="config override key=JSON value")
    ap.add_argument("--remat", action="store_true", help="global_config.use_remat (AlphaFold's recomputation)")
    ap.add_argument("--deterministic", action="store_true", help="dropout off")
    ap.add_argument("--steps", type=int, default=3, help="calls (the first compiles)")
    ap.add_argument("--optimizer", action="store_true", help="clip + Adam + EMA after the gradient (a full step)")
    ap.add_argument("--clip", type=float, default=0.1)
    args = ap.parse_args()

    import haiku as hk
    import jax
    from alphafold.model import modules, utils

    cfg = load_config(args)
    with np.load(args.params) as f:
        params = utils.flat_params_to_haiku({k: f[k] for k in f.files}, fuse=False)
    with np.load(args.batch) as f:
        batch = {k: f[k][None] for k in f.files}            # leading ensemble axis
    n = batch["aatype"].shape[1]
    c = cfg.model.embeddings_and_evoformer
    prev = {"prev_pos": np.zeros((n, 37, 3), np.float32),
            "prev_msa_first_row": np.zeros((n, c.msa_channel), np.float32),
            "prev_pair": np.zeros((n, n, c.pair_channel), np.float32)}

    class Outer(hk.Module):
        """A module named 'alphafold' around AlphaFoldIteration: the parameter names of the released weights."""

        def __init__(self):
            super().__init__(name="alphafold")

        def __call__(self, b, p):
            impl = modules.AlphaFoldIteration(cfg.model, cfg.model.global_config)
            _, total = impl(ensembled_batch=b, non_ensembled_batch=p, is_training=True, compute_loss=True,
                            ensemble_representations=False)
            return total

    model = hk.transform(lambda b, p: Outer()(b, p))

    def loss(prm, key):
        return model.apply(prm, key, batch, prev)

    step = jax.jit(jax.value_and_grad(loss))
    update = jax.jit(adam_ema_update(args.clip), donate_argnums=(0, 1, 2, 3)) if args.optimizer else None
    tree = jax.tree_util.tree_map
    state = None
    if update is not None:
        import jax.numpy as jnp
        params = tree(jnp.asarray, params)
        state = (tree(jnp.zeros_like, params), tree(jnp.zeros_like, params), tree(jnp.array, params))
    times, value, norm = [], None, None
    for s in range(max(1, args.steps)):
        t0 = time.perf_counter()
        value, grads = step(params, jax.random.PRNGKey(s))
        if update is not None:
            params, *state, norm = update(params, *state, grads, jnp.asarray(s + 1.0))
            del grads
            jax.block_until_ready(params)
            norm = float(norm)
        else:
            jax.block_until_ready(grads)
        times.append(time.perf_counter() - t0)
        if update is None:
            norm = float(np.sqrt(sum(float(np.sum(np.square(g))) for g in jax.tree_util.tree_leaves(grads))))
    steady = times[1:]
    print(json.dumps({"side": "alphafold", "num_res": int(n), "first_step_s": round(times[0], 2),
                      "step_s": round(min(steady), 2) if steady else None,
                      "step_times_s": [round(t, 2) for t in times], "loss": float(value), "grad_norm": norm,
                      "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2),
                      "use_remat": bool(args.remat), "dropout": not args.deterministic,
                      "optimizer": "clip + Adam + EMA" if args.optimizer else None, "jax": jax.__version__}))


def adam_ema_update(clip, lr=1e-3, b1=0.9, b2=0.999, eps=1e-6, decay=0.999):
    """(params, m, v, ema, grads, t) -> (params, m, v, ema, grad norm): clip to global norm, Adam, EMA."""
    import jax
    import jax.numpy as jnp
    tree = jax.tree_util.tree_map

    def update(params, m, v, ema, grads, t):
        norm = jnp.sqrt(sum(jnp.sum(jnp.square(g)) for g in jax.tree_util.tree_leaves(grads)))
        factor = clip / jnp.maximum(norm, clip)
        grads = tree(lambda g: g * factor, grads)
        m = tree(lambda a, g: b1 * a + (1 - b1) * g, m, grads)
        v = tree(lambda a, g: b2 * a + (1 - b2) * g * g, v, grads)
        rate = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        params = tree(lambda p, a, b: p - rate * a / (jnp.sqrt(b) + eps), params, m, v)
        ema = tree(lambda e, p: decay * e + (1 - decay) * p, ema, params)
        return params, m, v, ema, norm

    return update


if __name__ == "__main__":
    main()
