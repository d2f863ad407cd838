"""Fused float32 CPU kernels (C++, ``native_kernels.cc``) as MindSpore AOT custom operators.

Why: on MindSpore 2.10's CPU backend the LayerNorm kernel is ~10x slower than a plain fused loop and its gradient
~27x (``scripts/bench_af_kernels.py``, [512, 100, 256]: 41 vs 4.2 ms, with the gradient 305 vs 11 ms; jax 16 / 60
ms), and attention spends most of its time in the bias additions, clip and softmax over [B, H, Q, K] logits and in
the chunk writes that keeping those logits small requires. The kernels here:

* :func:`layer_norm` (+ gradient): every LayerNorm of the model;
* :func:`softmax_bias` (+ gradient): the attention weights in training (bias additions, clip, softmax in one pass);
* :func:`attention`: the whole attention at inference, without forming the logits (so attention needs no chunking);
* inference only, no gradient (training runs MindSpore's ops): :func:`global_attention` (the extra-MSA column
  attention's summary in the MSA's own layout), :func:`sigmoid_gate` (attention gating), :func:`bias_add` (every
  Linear's bias, with its ReLU), :func:`permute` (layout changes; MindSpore's permute of a [5120, 100, 64] tensor to
  (1, 0, 2) took 210 ms, this kernel 38 ms, each with the copy of the result to the host).

A graph containing these operators must return a tuple, not a dict: MindSpore 2.10 cannot compile a top-level graph
returning a dict when a Custom operator runs in its last segment ("The prim is not a PrimitivePy"); wrap it in
:class:`~mindsponge_fold.model.alphafold.TupleOutput`, as ModelRunner does.

The C++ file is compiled with the system compiler (``$CXX`` or ``g++``) on first use into a cache directory
(``$MSF_NATIVE_CACHE``, default ``~/.cache/mindsponge_fold/native``), keyed by the source, the flags, the compiler
and the CPU; the library is written to a temporary name and renamed, so concurrent workers never load a half-written
file. ``runtime.native_kernels`` in the config selects them: ``auto`` (default) uses them on the CPU backend when
the build succeeds (otherwise MindSpore's kernels, with one line on stderr saying why), ``true`` requires them,
``false`` never uses them. Ascend and GPU always run MindSpore's kernels.

The LayerNorm and softmax operators have their own backward (``bprop``), also native; values and gradients agree
with MindSpore's kernels to float32 rounding, the inference-only operators' values with numpy's
(tests/test_native_kernels.py).
"""
from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import mindspore as ms
from mindspore import ops

SOURCE = Path(__file__).with_name("native_kernels.cc")
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-fopenmp-simd", "-fPIC", "-shared", "-pthread", "-std=c++17")
SETTINGS = ("auto", True, False)
LOGIT_CLIP = 1e8        # the clip compiled into the softmax kernel (primitives.LOGIT_CLIP, float32)


class NativeKernelError(RuntimeError):
    """The native kernels were required (``runtime.native_kernels: true``) but cannot be used."""


def cache_dir() -> Path:
    base = os.environ.get("MSF_NATIVE_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "mindsponge_fold" / "native"


def _compiler() -> str | None:
    cxx = os.environ.get("CXX") or "g++"
    return shutil.which(cxx)


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return ""


def _key(compiler: str) -> str:
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        version = ""
    digest = hashlib.sha256()
    for part in (SOURCE.read_bytes(), " ".join(FLAGS).encode(), version.encode(), _cpu_flags().encode()):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


@functools.lru_cache(maxsize=None)
def library() -> tuple[str | None, str]:
    """(path of the built library, "") or (None, why it is unavailable). Built once per source/compiler/CPU."""
    compiler = _compiler()
    if compiler is None:
        return None, f"no C++ compiler ({os.environ.get('CXX') or 'g++'}) on PATH"
    out = cache_dir() / f"msf_native_{_key(compiler)}.so"
    if out.exists():
        return str(out), ""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=out.stem, suffix=".so.tmp", dir=out.parent)
        os.close(fd)
    except OSError as exc:
        return None, f"cannot write to {out.parent}: {exc}"
    try:
        proc = subprocess.run([compiler, *FLAGS, str(SOURCE), "-o", tmp], capture_output=True, text=True,
                              timeout=600)
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or ["(no message)"])[0]
            return None, f"{compiler} failed on {SOURCE.name}: {first}"
        os.replace(tmp, out)
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"building {SOURCE.name} failed: {exc}"
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return str(out), ""


def resolve(setting, device: str | None = None) -> bool:
    """``runtime.native_kernels`` -> whether the model uses the native kernels (see the module docstring)."""
    if setting not in SETTINGS:
        raise ValueError(f"runtime.native_kernels must be auto, true or false, got {setting!r}")
    if setting is False:
        return False
    device = str(device or ms.get_context("device_target")).upper()
    if device != "CPU":
        if setting is True:
            raise NativeKernelError(f"runtime.native_kernels=true: the native kernels are CPU kernels, the device "
                                    f"is {device}")
        return False
    path, why = library()
    if path is None:
        if setting is True:
            raise NativeKernelError(f"runtime.native_kernels=true but they cannot be built: {why}")
        _warn_once(why)
        return False
    return True


@functools.lru_cache(maxsize=None)
def _warn_once(why: str) -> None:
    print(f"mindsponge_fold: native CPU kernels unavailable ({why}); using MindSpore's kernels", file=sys.stderr)


def _op(name: str, out_shape, bprop=None, out_dtype=None):
    """The AOT operator ``name``; ``out_shape`` maps the inputs' shapes to the output shape(s) and, unless
    ``out_dtype`` is given, their dtypes likewise (outputs shaped and typed like inputs)."""
    path, why = library()
    if path is None:
        raise NativeKernelError(f"native kernels unavailable: {why}")
    return ops.Custom(f"{path}:{name}", out_shape=out_shape, out_dtype=out_dtype or out_shape, func_type="aot",
                      bprop=bprop)


def layer_norm():
    """An operator ``(x [..., C], scale [C], offset [C]) -> y`` (float32, eps 1e-5) with its native gradient."""
    grad = _op("msf_layer_norm_grad", lambda x, scale, dy: (x, scale, scale))

    def bprop(x, scale, offset, out, dout):
        dx, dscale, doffset = grad(x, scale, dout)
        return dx, dscale, doffset

    return _op("msf_layer_norm", lambda x, scale, offset: x, bprop)


def softmax_bias(with_pair_bias: bool):
    """An operator ``(logits [B, M..., K], mask_bias [B or 1, ..., K][, pair_bias [M..., K]]) -> weights``:
    softmax over K of the logits plus the biases, clipped to +-1e8 first (the reference's clip), float32. Its
    gradient (:func:`softmax_bias_grad`): the clipped softmax's for the logits, the batch sum of that for the pair
    bias, none for the mask bias."""
    grad = softmax_bias_grad(with_pair_bias)
    reduce_sum = ops.ReduceSum(keep_dims=False)
    zeros_like = ops.ZerosLike()
    if with_pair_bias:
        def bprop_pair(logits, mb, pb, out, dout):
            dl = grad(logits, mb, pb, out, dout)
            return dl, zeros_like(mb), reduce_sum(dl, 0)

        return _op("msf_softmax_bias_pair", lambda logits, mb, pb: logits, bprop_pair)

    def bprop(logits, mb, out, dout):
        return grad(logits, mb, out, dout), zeros_like(mb)

    return _op("msf_softmax_bias", lambda logits, mb: logits, bprop)


def softmax_bias_grad(with_pair_bias: bool):
    """An operator ``(logits, mask_bias[, pair_bias], w, dw) -> dlogits``: ``w * (dw - sum(dw * w))`` over the last
    axis where ``logits + biases`` is inside the clip, 0 where the clip is active (float32)."""
    if with_pair_bias:
        return _op("msf_softmax_bias_pair_grad", lambda logits, mb, pb, w, dw: logits)
    return _op("msf_softmax_bias_grad", lambda logits, mb, w, dw: logits)


def attention(with_pair_bias: bool):
    """An operator ``(q [B, Q, H, d], k [B, K, H, d], v [B, K, H, dv], mask_bias [B or 1, ..., K][, pair_bias
    [H, Q, K]]) -> [B, Q, H, dv]``: softmax over K of ``clip(q . k + biases, +-1e8)`` times v, per batch entry and
    head, without forming the [B, H, Q, K] logits (q already scaled; float32). Inference only: no gradient."""
    def out_shape(q, k, v, *biases):
        return list(q[:3]) + [v[3]]

    return _op("msf_attention_pair" if with_pair_bias else "msf_attention", out_shape,
               out_dtype=lambda q, *rest: q)


def global_attention():
    """An operator ``(x [K, B, c], mask [K, B], mask_bias [K, B], query_w [c, H * d], key_w [c, d], value_w [c, d])
    -> avg [B, H * d]``: the ungated result of global attention along the leading axis (Suppl. Alg. 19 lines 2-6)
    for every column, in the input's layout: masked-mean query, one key and value per row shared by the heads,
    softmax over the rows of ``clip(q . k + mask_bias, +-1e8)`` (float32). Inference only: no gradient."""
    def out_shape(x, mask, mb, qw, kw, vw):
        return [x[1], qw[1]]

    return _op("msf_global_attention", out_shape, out_dtype=lambda x, *rest: x)


def sigmoid_gate():
    """An operator ``(g [R, C], gate_bias [C], a [P, C]) -> sigmoid(g + gate_bias) * a[r % P]`` (P divides R; float32):
    attention gating in one pass. Inference only: no gradient."""
    return _op("msf_sigmoid_gate", lambda g, gb, a: g)


def bias_add(relu: bool = False):
    """An operator ``(x [R, C], bias [C]) -> x + bias`` (``relu``: ``max(x + bias, 0)``), float32. Inference only:
    no gradient."""
    return _op("msf_bias_relu" if relu else "msf_bias_add", lambda x, b: x)


def permute():
    """An operator ``(x [d_0, ..., d_n-1], perm [n] int32) -> x permuted, flattened [d_0 * ... * d_n-1]`` (float32;
    reshape the result to the permuted shape: the output shape cannot depend on the perm's value). Inference only:
    no gradient."""
    def out_shape(x, perm):
        size = 1
        for d in x:
            size *= d
        return [size]

    return _op("msf_permute", out_shape, out_dtype=lambda x, perm: x)
