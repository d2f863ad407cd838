#!/usr/bin/env python
"""AlphaFold-side timing driver for scripts/bench_af_compare.py. Runs INSIDE the AlphaFold reference venv (it
imports the ``alphafold`` package of ``alphafold-colabfold==2.3.27``, jax and haiku; nothing of it is copied here).

One recycling iteration (``num_recycle=0``) of AlphaFold's network, jit-compiled, on the first batch (recycling
iteration 0) of a processed-features npz with flat-layout weights (``module/path//name`` keys). Prints one JSON line:
first call (jit compile + run) and the best of ``--repeats`` further calls.

    $AF_VENV/bin/python scripts/bench_af_reference.py --params P.npz --features F.npz
        (--config-json fixture/config.json | --model model_1_ptm [--set key=value ...]) [--repeats 2]
"""
import argparse
import json
import resource
import time

import numpy as np

import bench_common   # this script's directory is first on sys.path


def load_config(args):
    import ml_collections
    from alphafold.model import config as af_config
    if args.config_json:
        full = json.load(open(args.config_json))["full_config"]
        cfg = ml_collections.ConfigDict(full)
    else:
        cfg = af_config.model_config(args.model)
    bench_common.set_config_values(cfg, args.set)
    cfg.model.num_recycle = 0
    cfg.data.common.num_recycle = 0
    return cfg


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", required=True)
    ap.add_argument("--features", required=True)
    ap.add_argument("--config-json", default="")
    ap.add_argument("--model", default="model_1_ptm")
    ap.add_argument("--set", action="append", default=[], help="config override key=JSON value")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--save-positions", default="", help=".npy for final_atom_positions (agreement check)")
    args = ap.parse_args()

    import haiku as hk
    import jax
    from alphafold.model import modules, utils

    cfg = load_config(args)
    with np.load(args.params) as f:
        params = utils.flat_params_to_haiku({k: f[k] for k in f.files}, fuse=False)
    with np.load(args.features) as f:
        batch = {k: f[k][:1] for k in f.files}          # recycling iteration 0, leading batch axis kept
    n = batch["aatype"].shape[1]
    c = cfg.model.embeddings_and_evoformer
    prev = {"prev_pos": np.zeros((n, 37, 3), np.float32),
            "prev_msa_first_row": np.zeros((n, c.msa_channel), np.float32),
            "prev_pair": np.zeros((n, n, c.pair_channel), np.float32)}

    def forward(b):
        return modules.AlphaFold(cfg.model)(b, is_training=False)

    apply = jax.jit(hk.transform(forward).apply)
    key = jax.random.PRNGKey(0)
    t0 = time.perf_counter()
    out = apply(params, key, {**batch, "prev": prev})
    jax.block_until_ready(out)
    first = time.perf_counter() - t0
    times = []
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        out = apply(params, key, {**batch, "prev": prev})
        jax.block_until_ready(out)
        times.append(time.perf_counter() - t0)
    pos = np.asarray(out["structure_module"]["final_atom_positions"])
    print(json.dumps({"side": "alphafold", "num_res": int(n), "first_call_s": round(first, 2),
                      "forward_s": round(min(times), 2), "compile_s_est": round(first - min(times), 2),
                      "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20, 2),
                      "jax": jax.__version__, "devices": [str(d) for d in jax.devices()]}))
    if args.save_positions:
        np.save(args.save_positions, pos)


if __name__ == "__main__":
    main()
