#!/usr/bin/env python
"""Single operations at Evoformer shapes, timed alone in MindSpore (graph mode, CPU) and in jax (jit, CPU).

Complements ``scripts/bench_af_modules.py`` (time per module): when a module is slower on our side, this shows
whether the kernels themselves are (a matmul, softmax, layer norm, elementwise gate, transpose each compiled on its
own, the same shapes and float32 data on both sides) or what the module does around them. Each side runs in its own
subprocess (the MindSpore side with this interpreter, the jax side with ``--af-venv``'s), both on one machine, one
after the other; per op the best of ``--repeats`` calls after a warm-up call.

    python scripts/bench_af_kernels.py --af-venv /work/afvenv [--num-res 100] [--repeats 5]
        [--out benchmarks/results/bench_af_kernels.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def op_shapes(n: int, n_seq: int, n_extra: int) -> dict:
    """name -> (description, input shapes). c_m 256, c_z 128, 8 / 4 heads of 32 channels (model_1 widths)."""
    return {
        "linear_pair_128x128": ("pair [N*N,128] @ W [128,128]", [(n * n, 128), (128, 128)]),
        "linear_msa_256x256": ("MSA [S*N,256] @ W [256,256]", [(n_seq * n, 256), (256, 256)]),
        "linear_extra_64x64": ("extra MSA [E*N,64] @ W [64,64]", [(n_extra * n, 64), (64, 64)]),
        "triangle_mult_bmm": ("triangle multiplication: [128,N,N] @ [128,N,N]^T", [(128, n, n), (128, n, n)]),
        "attention_logits_softmax": ("row attention: softmax(q k^T + bias) v, [N,4,N,32]",
                                     [(n, 4, n, 32), (n, 4, n, 32), (n, 4, n, 32), (1, 4, n, n)]),
        "layer_norm_pair": ("layer norm over 128 channels of [N,N,128]", [(n, n, 128), (128,), (128,)]),
        "gate_sigmoid_mul_pair": ("sigmoid(g) * x on [N,N,128]", [(n, n, 128), (n, n, 128)]),
        "transpose_pair": ("[N,N,128] -> [N,N,128] swapping the residue axes (a contiguous copy)", [(n, n, 128)]),
        "extra_global_column_reduce": ("mean over rows of [E,N,64] (global column attention's query)",
                                       [(n_extra, n, 64)]),
        "extra_masked_row_sum_bmm": ("the same masked row sum as the model computes it: mask [N,1,E] @ m [N,E,64]",
                                     [(n, 1, n_extra), (n, n_extra, 64)]),
    }


def make_inputs(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def ms_side(shapes: dict, repeats: int) -> dict:
    os.environ.setdefault("GLOG_v", "3")
    import mindspore as ms
    from mindspore import nn, ops
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")

    class Op(nn.Cell):
        def __init__(self, name):
            super().__init__()
            self.name_ = name
            self.bmm = ops.BatchMatMul(transpose_b=True)
            self.bmm_plain = ops.BatchMatMul()
            self.ln = ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=1e-5)

        def construct(self, *x):
            name = self.name_
            if name.startswith("linear"):
                return ops.matmul(x[0], x[1])
            if name == "triangle_mult_bmm":
                return self.bmm(x[0], x[1])
            if name == "attention_logits_softmax":
                q, k, v, bias = x
                logits = self.bmm(q, k) + ops.broadcast_to(bias, (q.shape[0], q.shape[1], q.shape[2], k.shape[2]))
                return self.bmm_plain(ops.softmax(logits, -1), v)
            if name == "layer_norm_pair":
                return self.ln(x[0], x[1], x[2])[0]
            if name == "gate_sigmoid_mul_pair":
                return ops.sigmoid(x[0]) * x[1]
            if name == "transpose_pair":
                return ops.transpose(x[0], (1, 0, 2))
            if name == "extra_masked_row_sum_bmm":
                return self.bmm_plain(x[0], x[1])
            return ops.mean(x[0], 0)

    out = {}
    for name, (_, s) in shapes.items():
        cell = Op(name)
        xs = [ms.Tensor(a) for a in make_inputs(s)]
        t0 = time.perf_counter()
        cell(*xs).asnumpy()
        first = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            cell(*xs).asnumpy()
            times.append(time.perf_counter() - t0)
        out[name] = {"first_s": round(first, 4), "best_s": round(min(times), 5)}
    return out


def jax_side(shapes: dict, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    def layer_norm(x, g, b):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) * jax.lax.rsqrt(var + 1e-5) * g + b

    def attention(q, k, v, bias):
        logits = jnp.einsum("bhqc,bhkc->bhqk", q, k) + bias
        return jnp.einsum("bhqk,bhkc->bhqc", jax.nn.softmax(logits, -1), v)

    fns = {"triangle_mult_bmm": lambda a, b: jnp.einsum("cik,cjk->cij", a, b),
           "attention_logits_softmax": attention, "layer_norm_pair": layer_norm,
           "gate_sigmoid_mul_pair": lambda g, x: jax.nn.sigmoid(g) * x,
           "transpose_pair": lambda x: jnp.transpose(x, (1, 0, 2)),
           "extra_global_column_reduce": lambda x: x.mean(0),
           "extra_masked_row_sum_bmm": lambda m, x: jnp.einsum("bqk,bkc->bqc", m, x)}
    out = {}
    for name, (_, s) in shapes.items():
        fn = jax.jit(fns.get(name, jnp.matmul))
        xs = [jnp.asarray(a) for a in make_inputs(s)]
        t0 = time.perf_counter()
        np.asarray(fn(*xs))
        first = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            np.asarray(fn(*xs))
            times.append(time.perf_counter() - t0)
        out[name] = {"first_s": round(first, 4), "best_s": round(min(times), 5)}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--af-venv", default=os.environ.get("AF_VENV", "/work/afvenv"))
    ap.add_argument("--num-res", type=int, default=100)
    ap.add_argument("--num-seq", type=int, default=512, help="MSA rows (model_1_ptm inference: 508 + 4)")
    ap.add_argument("--num-extra", type=int, default=5120)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=os.path.join(HERE, "..", "benchmarks", "results", "bench_af_kernels.json"))
    ap.add_argument("--side", choices=["ms", "jax"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    shapes = op_shapes(args.num_res, args.num_seq, args.num_extra)
    if args.side:
        run = ms_side if args.side == "ms" else jax_side
        print(json.dumps(run(shapes, args.repeats)), flush=True)
        return
    sys.path.insert(0, HERE)
    import bench_common as bc
    common = [os.path.abspath(__file__), "--num-res", str(args.num_res), "--num-seq", str(args.num_seq),
              "--num-extra", str(args.num_extra), "--repeats", str(args.repeats)]
    report = {"benchmark": "single operations at Evoformer shapes, MindSpore graph mode vs jax jit (CPU, float32)",
              "command": "python scripts/bench_af_kernels.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "machine": bc.machine_info(), "ops": {k: v[0] for k, v in shapes.items()}}
    for side, python in (("mindspore", sys.executable), ("jax", os.path.join(args.af_venv, "bin", "python"))):
        res = subprocess.run([python, *common, "--side", "ms" if side == "mindspore" else "jax"],
                             capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise SystemExit(f"{side} side failed:\n{res.stderr[-3000:]}")
        report[side] = json.loads(res.stdout.strip().splitlines()[-1])
    report["ratio_mindspore_over_jax"] = {k: round(report["mindspore"][k]["best_s"] / report["jax"][k]["best_s"], 2)
                                          for k in shapes if report["jax"][k]["best_s"] > 0}
    report["machine"]["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    bc.write_result(args.out, report)
    print(json.dumps(report["ratio_mindspore_over_jax"], indent=1))


if __name__ == "__main__":
    main()
