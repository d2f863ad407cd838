"""Graph-mode compile time of the trunk (EmbeddingsAndEvoformer) vs Evoformer depth: the stacks run in while loops,
so compile time should stay flat in the number of blocks.

    python scripts/bench_trunk_compile.py [--blocks 2 8 48] [--preset tiny] [--num-res 32] [--train [--remat]]

Prints, per depth, the first call (compile + run) and the steady-state call time. ``--train`` measures a
forward+backward (value_and_grad) instead of the forward.
"""
import argparse
import time

import mindspore as ms
import numpy as np
from mindspore import Tensor

from mindsponge_fold.common.config import load_config
from mindsponge_fold.data.derived_features import add_derived_features
from mindsponge_fold.model.primitives import ModelContext
from mindsponge_fold.model.trunk import EmbeddingsAndEvoformer


def synthetic_batch(cfg, n, rng):
    """Random features with the shapes of one recycling iteration (no batch axis)."""
    s, e, t = cfg.data.eval.max_msa_clusters, cfg.data.common.max_extra_msa, cfg.data.eval.max_templates
    aatype = rng.integers(0, 20, n).astype(np.int32)
    pos = rng.standard_normal((t, n, 37, 3)).astype(np.float32) * 10
    b = {
        "aatype": aatype, "residue_index": np.arange(n, dtype=np.int32), "seq_mask": np.ones(n, np.float32),
        "target_feat": np.eye(22, dtype=np.float32)[aatype], "msa_feat": rng.random((s, n, 49)).astype(np.float32),
        "msa_mask": np.ones((s, n), np.float32), "extra_msa": rng.integers(0, 23, (e, n)).astype(np.int32),
        "extra_msa_mask": np.ones((e, n), np.float32), "extra_has_deletion": np.zeros((e, n), np.float32),
        "extra_deletion_value": np.zeros((e, n), np.float32),
        "template_aatype": rng.integers(0, 21, (t, n)).astype(np.int32), "template_all_atom_positions": pos,
        "template_all_atom_masks": np.ones((t, n, 37), np.float32), "template_mask": np.ones(t, np.float32),
        "template_pseudo_beta": pos[:, :, 3], "template_pseudo_beta_mask": np.ones((t, n), np.float32),
    }
    return add_derived_features(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, nargs="+", default=[2, 8, 48])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--num-res", type=int, default=32)
    ap.add_argument("--train", action="store_true")
    ap.add_argument("--remat", action="store_true", help="model.global_config.use_remat (per-block recompute)")
    args = ap.parse_args()
    ms.set_device("CPU")
    ms.set_context(mode=ms.GRAPH_MODE)
    for nb in args.blocks:
        cfg = load_config(args.preset, [f"model.embeddings_and_evoformer.evoformer_num_block={nb}",
                                        f"model.global_config.use_remat={str(args.remat).lower()}"])
        net = EmbeddingsAndEvoformer(cfg.model, ModelContext.from_config(cfg))
        net.set_train(args.train)
        c = cfg.model.embeddings_and_evoformer
        n = args.num_res
        b = synthetic_batch(cfg, n, np.random.default_rng(0))
        inputs = (ms.mutable({k: Tensor(b[k]) for k in net.required_features()}),
                  Tensor(np.zeros((n, 37, 3), np.float32)), Tensor(np.zeros((n, c.msa_channel), np.float32)),
                  Tensor(np.zeros((n, n, c.pair_channel), np.float32)))
        if args.train:
            def loss(batch, pos, msa_row, pair):
                out = net(batch, pos, msa_row, pair)
                return (out["pair"] ** 2).mean() + (out["single"] ** 2).mean()
            step = ms.value_and_grad(loss, None, net.trainable_params())
        else:
            step = net
        times = []
        for _ in range(3):
            t0 = time.time()
            out = step(*inputs)
            (out[0] if args.train else out["pair"]).asnumpy()
            times.append(time.time() - t0)
        print(f"evoformer_num_block={nb:3d} ({'train' if args.train else 'forward'}, N_res={n}): first call "
              f"{times[0]:.1f} s, steady {min(times[1:]):.2f} s, compile ~{times[0] - min(times[1:]):.1f} s",
              flush=True)


if __name__ == "__main__":
    main()
