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
        "attention_msa_column": ("MSA column attention: softmax(q k^T + bias) v, [N,8,S,32]",
                                 [(n, 8, n_seq, 32), (n, 8, n_seq, 32), (n, 8, n_seq, 32), (1, 1, 1, n_seq)]),
        "attention_extra_row": ("extra-MSA row attention, 512 of the E rows: [512,8,N,8] + pair bias [1,8,N,N]",
                                [(512, 8, n, 8), (512, 8, n, 8), (512, 8, n, 8), (1, 8, n, n)]),
        "layer_norm_pair": ("layer norm over 128 channels of [N,N,128]", [(n, n, 128), (128,), (128,)]),
        "layer_norm_msa": ("layer norm over 256 channels of [S,N,256]", [(n_seq, n, 256), (256,), (256,)]),
        "layer_norm_msa_grad": ("layer norm of [S,N,256] and its gradient (x, scale, offset) for a cotangent",
                                [(n_seq, n, 256), (256,), (256,), (n_seq, n, 256)]),
        "gate_sigmoid_mul_pair": ("sigmoid(g) * x on [N,N,128]", [(n, n, 128), (n, n, 128)]),
        "transpose_pair": ("[N,N,128] -> [N,N,128] swapping the residue axes (a contiguous copy)", [(n, n, 128)]),
        "extra_global_column_reduce": ("mean over rows of [E,N,64] (global column attention's query)",
                                       [(n_extra, n, 64)]),
        "extra_masked_row_sum_bmm": ("the same masked row sum as the model computes it: mask [N,1,E] @ m [N,E,64]",
                                     [(n, 1, n_extra), (n, n_extra, 64)]),
    }


# ops also timed with our native C++ kernels (mindsponge_fold.model.native) on the MindSpore side: name + "_native"
NATIVE = ("attention_logits_softmax", "attention_msa_column", "attention_extra_row", "layer_norm_pair",
          "layer_norm_msa", "layer_norm_msa_grad")


# attention ops also timed with the native fused inference kernel (one kernel, no logits): name + "_fused"; its
# inputs are laid out as the model passes them ([B, Q, H, d]), the same numbers of elements
FUSED = ("attention_logits_softmax", "attention_msa_column", "attention_extra_row")


def with_native(shapes: dict) -> dict:
    out = dict(shapes)
    for name in NATIVE:
        desc, s = shapes[name]
        out[name + "_native"] = (desc + ", MindSpore side with the native kernels", s)
    for name in FUSED:
        desc, s = shapes[name]
        qkv = [(a[0], a[2], a[1], a[3]) for a in s[:3]]
        out[name + "_fused"] = (desc + ", MindSpore side with the native fused attention kernel (inference)",
                                qkv + [s[3]])
    return out


def make_inputs(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def ms_side(shapes: dict, repeats: int) -> dict:
    os.environ.setdefault("GLOG_v", "3")
    import mindspore as ms
    from mindspore import nn, ops
    from mindsponge_fold.model import native
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")

    class Op(nn.Cell):
        def __init__(self, name):
            super().__init__()
            self.name_ = name
            self.native = name.endswith("_native")
            self.bmm = ops.BatchMatMul(transpose_b=True)
            self.bmm_plain = ops.BatchMatMul()
            self.ln_native = native.layer_norm() if self.native else None
            self.softmax_bias = native.softmax_bias(False) if self.native else None
            self.softmax_pair = native.softmax_bias(True) if self.native else None
            self.fused = name.endswith("_fused")
            self.attn = native.attention(False) if self.fused else None
            self.attn_pair = native.attention(True) if self.fused else None
            self.ln_stock = ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=1e-5)
            self.grad = ops.GradOperation(get_all=True, sens_param=True)

        def ln(self, x, g, b):
            if self.native:
                return self.ln_native(x, g, b)
            return self.ln_stock(x, g, b)[0]

        def construct(self, *x):
            name = self.name_
            if self.fused:                              # q, k, v [B, Q/K, H, d]
                q, k, v, bias = x
                if bias.shape[1] == 1:
                    return self.attn(q, k, v, bias)
                return self.attn_pair(q, k, v, ops.zeros_like(bias[:, :1, :1]), bias[0])
            if self.native and name.startswith("attention"):
                q, k, v, bias = x
                logits = self.bmm(q, k)
                if bias.shape[1] == 1:                  # a key mask bias [1, 1, 1, K]
                    w = self.softmax_bias(logits, bias)
                else:                                   # a pair bias [1, H, Q, K] (and no mask)
                    w = self.softmax_pair(logits, ops.zeros_like(bias[:, :1, :1]), bias[0])
                return self.bmm_plain(w, v)
            if name.startswith("layer_norm_msa_grad"):
                return self.grad(self.ln)(x[0], x[1], x[2], x[3])
            if name.startswith("layer_norm"):
                return self.ln(x[0], x[1], x[2])
            if name.startswith("linear"):
                return ops.matmul(x[0], x[1])
            if name == "triangle_mult_bmm":
                return self.bmm(x[0], x[1])
            if name.startswith("attention"):
                q, k, v, bias = x
                logits = self.bmm(q, k) + ops.broadcast_to(bias, (q.shape[0], q.shape[1], q.shape[2], k.shape[2]))
                return self.bmm_plain(ops.softmax(logits, -1), v)
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
        _fetch(cell(*xs))
        first = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            _fetch(cell(*xs))
            times.append(time.perf_counter() - t0)
        out[name] = {"first_s": round(first, 4), "best_s": round(min(times), 5)}
    return out


def _fetch(result):
    """Copy an op's result (a tensor or a tuple of them) to numpy."""
    return [np.asarray(r) for r in result] if isinstance(result, (tuple, list)) else np.asarray(result)


def jax_side(shapes: dict, repeats: int) -> dict:
    import jax
    import jax.numpy as jnp

    def layer_norm(x, g, b):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) * jax.lax.rsqrt(var + 1e-5) * g + b

    def layer_norm_grad(x, g, b, cot):
        return jax.grad(lambda a, s, o: (layer_norm(a, s, o) * cot).sum(), argnums=(0, 1, 2))(x, g, b)

    def attention(q, k, v, bias):
        logits = jnp.einsum("bhqc,bhkc->bhqk", q, k) + bias
        return jnp.einsum("bhqk,bhkc->bhqc", jax.nn.softmax(logits, -1), v)

    fns = {"triangle_mult_bmm": lambda a, b: jnp.einsum("cik,cjk->cij", a, b),
           "attention_logits_softmax": attention, "attention_msa_column": attention,
           "attention_extra_row": attention, "layer_norm_pair": layer_norm, "layer_norm_msa": layer_norm,
           "layer_norm_msa_grad": layer_norm_grad,
           "gate_sigmoid_mul_pair": lambda g, x: jax.nn.sigmoid(g) * x,
           "transpose_pair": lambda x: jnp.transpose(x, (1, 0, 2)),
           "extra_global_column_reduce": lambda x: x.mean(0),
           "extra_masked_row_sum_bmm": lambda m, x: jnp.einsum("bqk,bkc->bqc", m, x)}
    out = {}
    for name, (_, s) in shapes.items():
        if name.endswith(("_native", "_fused")):
            continue
        fn = jax.jit(fns.get(name, jnp.matmul))
        xs = [jnp.asarray(a) for a in make_inputs(s)]
        t0 = time.perf_counter()
        _fetch(fn(*xs))
        first = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            _fetch(fn(*xs))
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
    shapes = with_native(op_shapes(args.num_res, args.num_seq, args.num_extra))
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
    jax_of = {k: report["jax"][k.removesuffix("_native").removesuffix("_fused")]["best_s"] for k in shapes}
    report["ratio_mindspore_over_jax"] = {k: round(report["mindspore"][k]["best_s"] / jax_of[k], 2)
                                          for k in shapes if jax_of[k] > 0}
    report["machine"]["load_avg_1min_end"] = round(os.getloadavg()[0], 2)
    bc.write_result(args.out, report)
    print(json.dumps(report["ratio_mindspore_over_jax"], indent=1))


if __name__ == "__main__":
    main()
