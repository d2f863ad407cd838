"""Building blocks shared by every AlphaFold 2 module: Linear, LayerNorm, (gated) attention, global attention,
shared dropout, and the machinery for stacked layer weights.

Conventions (read this before writing a module):

* Parameters have AlphaFold's names and shapes (``weights`` [in, out], ``bias``, ``scale``/``offset``,
  ``query_w`` [c, heads, head_dim], ...) and Cells are named after AlphaFold's haiku modules, so a parameter's
  MindSpore name (its attribute path) maps to the official ``module/path//name`` mechanically
  (see :mod:`mindsponge_fold.model.params`).
* Stacked layers (the 48 Evoformer blocks, the extra-MSA and template pair stacks) are ONE Cell whose parameters carry
  a leading ``stack`` axis, exactly like AlphaFold's ``layer_stack`` parameters. The owning stack runs a graph-mode
  ``while`` loop over a Tensor layer index ``idx`` and every primitive takes its weights with ``gather(param, idx)``.
  Compile time is then flat in the number of blocks. Un-stacked modules pass ``idx=None``.
* Precision: modules compute in ``ctx.dtype`` (float32, or float16 on Ascend); LayerNorm statistics and softmax run in
  float32 when the config's ``precision.fp32_cells`` lists them, and the attention mask bias is always added in the
  softmax dtype with a constant that is finite there.
* Dropout masks are inputs, not draws inside the graph: every :class:`SharedDropout` is a *site* (a key such as
  ``evoformer_iteration/msa_row_attention_with_pair_bias``, the activation's symbolic shape, its stack and rate), the
  training step samples the masks of all sites on the host from (seed, step, example, iteration)
  (:mod:`mindsponge_fold.model.dropout_masks`) and passes them down as the ``drop`` dict; inference does the same
  per recycling iteration with ``model.global_config.eval_dropout`` (:mod:`mindsponge_fold.model.runner`). No
  ``drop`` (inference by default, or ``model.global_config.deterministic``) means no dropout. The same masks can
  therefore be replayed exactly, e.g. by the host-driven recomputation of :mod:`mindsponge_fold.train.remat`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, nn, ops

from mindsponge_fold.model import chunking, kernels, native
from mindsponge_fold.model.attention_core import AttentionCore, RecomputingAttentionCore

TRUNCATED_NORMAL_STDDEV_FACTOR = np.asarray(.87962566103423978, dtype=np.float32)
LOGIT_CLIP = 1e8           # AlphaFold's (fork's) logit clip for float32 softmax inputs
MASK_BIAS_FP32 = 1e9       # AlphaFold's mask bias 1e9 * (mask - 1)
MASK_BIAS_FP16 = 3e4       # largest bias that stays finite (with headroom) in float16


@dataclass(frozen=True)
class ModelContext:
    """What every Cell needs to know at construction time (AlphaFold's ``global_config`` plus precision)."""
    dtype: object = ms.float32                      # compute dtype of matmuls
    fp32_cells: frozenset = frozenset({"layer_norm", "softmax", "structure_module", "heads", "losses"})
    deterministic: bool = False                     # no dropout even when training
    zero_init: bool = True                          # zero-initialised output layers (AlphaFold's default)
    chunk_size: int = 0                             # inference chunking (0 = off, k rows, -1 = auto; see chunking)
    chunk_budget_bytes: int = chunking.AUTO_BUDGET_BYTES    # the automatic rule's budget per chunk
    chunk_unchunked_bytes: int = chunking.UNCHUNKED_BYTES   # the automatic rule: ops below this size run whole
    remat: str = "none"                             # training recomputation: none | graph | host (see resolve_remat)
    native_kernels: bool = False                    # fused C++ CPU kernels (see native; runtime.native_kernels)
    seed: int = 0
    rng: np.random.Generator = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.rng is None:
            object.__setattr__(self, "rng", np.random.default_rng(self.seed))

    @staticmethod
    def from_config(cfg, seed: int | None = None) -> "ModelContext":
        dtypes = {"float32": ms.float32, "float16": ms.float16, "bfloat16": ms.bfloat16}
        gcfg = cfg.model.global_config
        return ModelContext(
            dtype=dtypes[cfg.precision.compute_dtype],
            fp32_cells=frozenset(cfg.precision.fp32_cells),
            deterministic=bool(gcfg.deterministic),
            zero_init=bool(gcfg.zero_init),
            chunk_size=chunking.setting_from_config(cfg.chunking.chunk_size),
            chunk_budget_bytes=int(cfg.chunking.auto_budget_mib) * 2 ** 20,
            chunk_unchunked_bytes=int(cfg.chunking.unchunked_mib) * 2 ** 20,
            remat=resolve_remat(gcfg.use_remat),
            native_kernels=native.resolve(cfg.runtime.native_kernels),
            seed=int(cfg.train.seed if seed is None else seed),
        )

    def family(self, name: str) -> "ModelContext":
        """The context for a cell family: float32 when the family is listed in ``fp32_cells``."""
        if name in self.fp32_cells and self.dtype != ms.float32:
            return replace(self, dtype=ms.float32)
        return self

    def dtype_of(self, family: str):
        return ms.float32 if (family in self.fp32_cells or self.dtype == ms.float32) else self.dtype


def resolve_remat(use_remat, device: str | None = None) -> str:
    """``model.global_config.use_remat`` -> how the training step recomputes the trunk blocks (Suppl. 1.11.8).

    * ``false``: no recomputation ('none');
    * ``"graph"``: ``Cell.recompute()`` on the stacked blocks inside the gradient graph (frees activations on Ascend
      and GPU; on MindSpore 2.10's CPU backend it saves nothing, scripts/bench_remat_cpu.py);
    * ``"host"``: recomputation driven from the host, block by block (:mod:`mindsponge_fold.train.remat`): memory
      independent of the depth on every backend;
    * ``true``: 'host' on CPU, 'graph' on Ascend/GPU (``device``, default MindSpore's current device target)."""
    if use_remat is False or use_remat is None:
        return "none"
    if use_remat in ("host", "graph"):
        return use_remat
    if use_remat is True:
        if device is None:
            device = ms.get_context("device_target")
        return "host" if str(device).upper() == "CPU" else "graph"
    raise ValueError(f"model.global_config.use_remat must be true, false, 'host' or 'graph', got {use_remat!r}")


# ----------------------------------------------------------------------------------------------------------------
# Initialisers (numpy, so construction is deterministic and independent of MindSpore's global seed)

def truncated_normal(rng, shape, stddev):
    """Normal(0, stddev) truncated to +-2 stddev (resampled), as haiku's TruncatedNormal."""
    out = rng.standard_normal(shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(out) > 2.0
    return (out * stddev).astype(np.float32)


def init_array(rng, init, shape, fan_in_shape=()):
    """AlphaFold's named initialisers: 'linear' / 'relu' (fan-in truncated normal), 'glorot', 'zeros', 'ones',
    or a float constant."""
    shape = tuple(int(s) for s in shape)
    if isinstance(init, (int, float)) and not isinstance(init, bool):
        return np.full(shape, init, np.float32)
    if init == "zeros":
        return np.zeros(shape, np.float32)
    if init == "ones":
        return np.ones(shape, np.float32)
    if init in ("linear", "relu"):
        scale = 1.0 / max(1, int(np.prod(fan_in_shape)))
        if init == "relu":
            scale *= 2.0
        return truncated_normal(rng, shape, np.sqrt(scale) / TRUNCATED_NORMAL_STDDEV_FACTOR)
    if init == "glorot":
        # fan_in = first dim, fan_out = product of the others (haiku VarianceScaling fan_avg, uniform)
        fan_in = shape[0] if shape else 1
        fan_out = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        limit = math.sqrt(3.0 * 1.0 / max(1.0, (fan_in + fan_out) / 2.0))
        return rng.uniform(-limit, limit, shape).astype(np.float32)
    raise ValueError(f"unknown initialiser {init!r}")


# ----------------------------------------------------------------------------------------------------------------

class Module(nn.Cell):
    """Base Cell: parameters with an optional leading ``stack`` shape, taken per layer with :meth:`take`."""

    def __init__(self, ctx: ModelContext, stack=()):
        super().__init__()
        self.stack = tuple(int(s) for s in stack)
        self.dtype = ctx.dtype
        self.chunk_setting = int(ctx.chunk_size)
        self.chunk_budget = int(ctx.chunk_budget_bytes)
        self.chunk_unchunked = int(ctx.chunk_unchunked_bytes)
        self._rng = ctx.rng
        self.native_permute = native.permute() if ctx.native_kernels else None

    def add_param(self, name: str, shape, init, fan_in_shape=None):
        """Create Parameter ``name`` of shape ``stack + shape`` (each stacked layer initialised independently)."""
        shape = tuple(int(s) for s in shape)
        fan = tuple(fan_in_shape) if fan_in_shape is not None else shape[:1]
        if self.stack:
            value = np.stack([init_array(self._rng, init, shape, fan) for _ in range(int(np.prod(self.stack)))])
            value = value.reshape(self.stack + shape)
        else:
            value = init_array(self._rng, init, shape, fan)
        setattr(self, name, Parameter(Tensor(value), name=name))

    @staticmethod
    def take(param, idx):
        return param if idx is None else ops.gather(param, idx, 0)

    def rows_per_chunk(self, num_rows: int, row_elems: int, out_row_elems: int = 0) -> int:
        """Inference chunk size for an op over ``num_rows`` rows (all rows in training; see :mod:`chunking`)."""
        if self.training:
            return num_rows
        return chunking.rows_per_chunk(self.chunk_setting, num_rows, row_elems, self.chunk_budget, out_row_elems,
                                       self.chunk_unchunked)

    def permute(self, x, perm):
        """``x`` permuted; at inference with the native kernel (float32) or else in chunks of output rows (see
        :func:`chunking.permute`)."""
        n = x.shape[perm[0]]
        if self.native_permute is not None and not self.training and x.dtype == ms.float32:
            shape = tuple(x.shape[p] for p in perm)
            return self.native_permute(x, Tensor(perm, ms.int32)).reshape(shape)
        elems = 1
        for d in x.shape:
            elems *= d
        return chunking.permute(x, perm, self.rows_per_chunk(n, elems // n))


class Linear(Module):
    """AlphaFold's Linear: ``weights`` [num_input..., num_output...] (+ ``bias``); arbitrary leading dims.

    ``initializer`` in {'linear', 'relu', 'zeros', 'final'}; 'final' is zeros when ``ctx.zero_init``, else 'linear'.
    """

    def __init__(self, ctx, num_input, num_output, initializer="linear", use_bias=True, bias_init=0.0, stack=(),
                 relu=False):
        super().__init__(ctx, stack)
        self.relu = bool(relu)      # ReLU applied to the output (fused with the bias at inference)
        self.in_shape = (num_input,) if isinstance(num_input, int) else tuple(num_input)
        self.out_shape = (num_output,) if isinstance(num_output, int) else tuple(num_output)
        self.n_in = int(np.prod(self.in_shape))
        self.n_out = int(np.prod(self.out_shape))
        if initializer == "final":
            initializer = "zeros" if ctx.zero_init else "linear"
        self.add_param("weights", self.in_shape + self.out_shape, initializer, self.in_shape)
        self.use_bias = use_bias
        if use_bias:
            self.add_param("bias", self.out_shape, float(bias_init))
        # inference, float32: the bias (and ReLU) in one native pass (no gradient: training uses MindSpore's ops)
        native_ok = ctx.native_kernels and use_bias and self.dtype == ms.float32
        self.native_bias = native.bias_add(self.relu) if native_ok else None

    def construct(self, x, idx=None):
        w = self.take(self.weights, idx).reshape(self.n_in, self.n_out)
        lead = x.shape[:x.ndim - len(self.in_shape)]
        y = kernels.matmul(x.reshape(-1, self.n_in).astype(self.dtype), w.astype(self.dtype))
        if self.use_bias:
            b = self.take(self.bias, idx).reshape(self.n_out).astype(self.dtype)
            if self.native_bias is not None and not self.training:
                return self.native_bias(y, b).reshape(lead + self.out_shape)
            y = ops.bias_add(y, b)
        if self.relu:
            y = ops.relu(y)
        return y.reshape(lead + self.out_shape)


class LayerNorm(Module):
    """LayerNorm over the last axis with AlphaFold's ``scale``/``offset`` (eps 1e-5); statistics in float32 when
    'layer_norm' is in ``precision.fp32_cells``. Output has the input's dtype. With ``ctx.native_kernels`` (and
    float32 statistics) the fused C++ kernel of :mod:`native` and its native gradient, else MindSpore's."""

    def __init__(self, ctx, channels, stack=()):
        super().__init__(ctx, stack)
        self.add_param("scale", (channels,), "ones")
        self.add_param("offset", (channels,), "zeros")
        self.norm_dtype = ctx.dtype_of("layer_norm")
        self.native = bool(ctx.native_kernels) and self.norm_dtype == ms.float32
        if self.native:
            self.native_ln = native.layer_norm()
        else:
            self.ln = ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=1e-5)

    def construct(self, x, idx=None):
        in_dtype = x.dtype
        scale = self.take(self.scale, idx).astype(self.norm_dtype)
        offset = self.take(self.offset, idx).astype(self.norm_dtype)
        if self.native:
            y = self.native_ln(x.astype(self.norm_dtype), scale, offset)
        else:
            y = self.ln(x.astype(self.norm_dtype), scale, offset)[0]
        return y.astype(in_dtype)


def expand(x, shape):
    """``x`` broadcast to ``shape`` explicitly. Use it for the smaller operand of every elementwise op on a large
    tensor: MindSpore 2.10's CPU kernels keep a workspace of about four times the output size alive for the whole
    graph execution whenever a binary op broadcasts implicitly (measured: 8 chained ``y + bias[c]`` on an 84 MB
    tensor held 34x its size; with ``broadcast_to`` or ``bias_add``, 3x)."""
    return ops.broadcast_to(x, tuple(shape))


def mask_bias(mask, dtype):
    """AlphaFold's ``1e9 * (mask - 1)`` attention bias, with a constant that is finite in ``dtype``."""
    big = MASK_BIAS_FP32 if dtype == ms.float32 else MASK_BIAS_FP16
    return (mask.astype(dtype) - 1.0) * big


def softmax_with_bias(logits, bias, dtype):
    """softmax(logits + bias) in ``dtype`` (float32 per policy), logits clipped as the reference does."""
    logits = logits.astype(dtype) + expand(bias.astype(dtype), logits.shape)
    clip = LOGIT_CLIP if dtype == ms.float32 else 1e4
    logits = ops.clip_by_value(logits, -clip, clip)
    return ops.softmax(logits, -1)


def apply_gate(module, gate, gate_bias, avg):
    """Attention gating: ``sigmoid(gate + gate_bias) * avg[r % P]`` for gate [R, C], avg [P, C] (P divides R: a result
    per row, or per column broadcast along the rows as in global attention) -> [R, C]. At inference with
    ``module.native_gate`` (one pass), else MindSpore's ops."""
    if module.native_gate is not None and not module.training:
        return module.native_gate(gate, gate_bias, avg)
    rows, c = gate.shape
    period = avg.shape[0]
    g = ops.sigmoid(ops.bias_add(gate, gate_bias))
    if period == rows:
        return g * avg
    reps = rows // period
    return (g.reshape(reps, period, c) * expand(avg.reshape(1, period, c), (reps, period, c))).reshape(rows, c)


class Attention(Module):
    """Multi-head (gated) attention, AlphaFold's ``Attention`` (Suppl. Alg. 7, 8, 13, 14 share it).

    q_data [B, Q, a], m_data [B, K, c]; ``key_mask`` [B, K] (1 = attend) or broadcastable to [B, 1, 1, K];
    ``nonbatched_bias`` [H, Q, K] (e.g. the pair bias). Returns [B, Q, output_dim].
    """

    def __init__(self, ctx, q_dim, m_dim, num_head, output_dim, key_dim=None, value_dim=None, gating=True,
                 stack=()):
        super().__init__(ctx, stack)
        key_dim = q_dim if key_dim is None else key_dim
        value_dim = m_dim if value_dim is None else value_dim
        assert key_dim % num_head == 0 and value_dim % num_head == 0, (key_dim, value_dim, num_head)
        self.h, self.kd, self.vd = num_head, key_dim // num_head, value_dim // num_head
        self.q_dim, self.m_dim, self.output_dim = q_dim, m_dim, output_dim
        self.add_param("query_w", (q_dim, num_head, self.kd), "glorot")
        self.add_param("key_w", (m_dim, num_head, self.kd), "glorot")
        self.add_param("value_w", (m_dim, num_head, self.vd), "glorot")
        self.gating = gating
        if gating:
            self.add_param("gating_w", (q_dim, num_head, self.vd), "zeros")
            self.add_param("gating_b", (num_head, self.vd), "ones")
        self.add_param("output_w", (num_head, self.vd, output_dim), "zeros" if ctx.zero_init else "glorot")
        self.add_param("output_b", (output_dim,), "zeros")
        self.softmax_dtype = ctx.dtype_of("softmax")
        clip = LOGIT_CLIP if self.softmax_dtype == ms.float32 else 1e4
        # host-driven recomputation: the memory-lean kernel (see attention_core for why not in the one-graph step)
        core = RecomputingAttentionCore if ctx.remat == "host" else AttentionCore
        self.core = core(self.dtype, self.softmax_dtype, clip, has_pair_bias=False, native=ctx.native_kernels)
        self.core_with_bias = core(self.dtype, self.softmax_dtype, clip, has_pair_bias=True,
                                   native=ctx.native_kernels)
        self.scale = float(self.kd) ** -0.5
        # inference, float32: the gate's bias, sigmoid and product in one native pass
        native_ok = ctx.native_kernels and gating and self.dtype == ms.float32
        self.native_gate = native.sigmoid_gate() if native_ok else None

    def _proj(self, x, w):
        """x [B, N, c] @ w [c, H, d] -> [B, N, H, d]."""
        b, n, c = x.shape
        h, d = w.shape[-2], w.shape[-1]
        y = kernels.matmul(x.reshape(b * n, c).astype(self.dtype), w.reshape(c, h * d).astype(self.dtype))
        return y.reshape(b, n, h, d)

    def construct(self, q_data, m_data, key_mask, nonbatched_bias=None, idx=None):
        b, nq, _ = q_data.shape
        nk = m_data.shape[1]
        logits = 0 if self.core.fuses() else self.h * nq * nk       # the fused kernel forms no logits
        chunk = self.rows_per_chunk(b, logits + nq * self.q_dim + 2 * nk * self.m_dim, nq * self.output_dim)
        if chunk >= b:
            return self._attend(q_data, m_data, key_mask, nonbatched_bias, idx)
        if key_mask.ndim == 2 and key_mask.shape[0] == b:
            sliced, shared = (q_data, m_data, key_mask), (nonbatched_bias, idx)
        else:
            sliced, shared = (q_data, m_data), (key_mask, nonbatched_bias, idx)
        return chunking.map_rows(self._attend, chunk, sliced, shared, (nq, self.output_dim), self.dtype)

    def _attend(self, q_data, m_data, key_mask, nonbatched_bias, idx):
        b, nq, _ = q_data.shape
        q = self._proj(q_data, self.take(self.query_w, idx)) * self.scale      # [B,Q,H,kd]
        k = self._proj(m_data, self.take(self.key_w, idx))                     # [B,K,H,kd]
        v = self._proj(m_data, self.take(self.value_w, idx))                   # [B,K,H,vd]
        bias = mask_bias(key_mask, self.softmax_dtype)
        bias = bias.reshape(bias.shape[:-1] + (1,) * (4 - bias.ndim) + bias.shape[-1:])  # [B or 1, 1, 1, K]
        if nonbatched_bias is None:
            avg = self.core(q, k, v, bias, bias)
        else:
            avg = self.core_with_bias(q, k, v, bias, nonbatched_bias.astype(self.softmax_dtype))   # [B,Q,H,vd]
        if self.gating:
            gw = self.take(self.gating_w, idx).reshape(self.q_dim, self.h * self.vd).astype(self.dtype)
            gate = kernels.matmul(q_data.reshape(b * nq, self.q_dim).astype(self.dtype), gw)
            gb = self.take(self.gating_b, idx).reshape(self.h * self.vd).astype(self.dtype)
            avg = apply_gate(self, gate, gb, avg.reshape(b * nq, self.h * self.vd))
        ow = self.take(self.output_w, idx).reshape(self.h * self.vd, self.output_dim).astype(self.dtype)
        out = kernels.matmul(avg.reshape(b * nq, self.h * self.vd), ow)
        out = ops.bias_add(out, self.take(self.output_b, idx).astype(self.dtype))
        return out.reshape(b, nq, self.output_dim)


class GlobalAttention(Module):
    """Global attention along the leading axis (Suppl. Alg. 19 lines 2-7, extra-MSA stack).

    q_data = m_data [K, B, c] (K attended rows, B independent columns: the extra MSA as it is stored, [N_extra_seq,
    N_res, c]); q_mask [K, B]. One query per column (the masked mean over its rows), keys/values shared across heads.
    Returns [K, B, output_dim].

    Computed in that layout: only the keys and values ([K, B, d], 1/H of the input's width) are transposed to
    columns-first, so the [K, B, c] input and the gates never are (columns-first, the two permutes of the extra MSA and
    the column chunk loop took 1.7 s of a 3.9 s extra-MSA block at N_res 100).
    """

    def __init__(self, ctx, channels, num_head, output_dim, gating=True, stack=()):
        super().__init__(ctx, stack)
        assert channels % num_head == 0
        self.h, self.d, self.c, self.output_dim = num_head, channels // num_head, channels, output_dim
        self.add_param("query_w", (channels, num_head, self.d), "glorot")
        self.add_param("key_w", (channels, self.d), "glorot")
        self.add_param("value_w", (channels, self.d), "glorot")
        self.gating = gating
        if gating:
            self.add_param("gating_w", (channels, num_head, self.d), "zeros")
            self.add_param("gating_b", (num_head, self.d), "ones")
        self.add_param("output_w", (num_head, self.d, output_dim), "zeros" if ctx.zero_init else "glorot")
        self.add_param("output_b", (output_dim,), "zeros")
        self.softmax_dtype = ctx.dtype_of("softmax")
        self.bmm = ops.BatchMatMul()
        self.bmm_t = ops.BatchMatMul(transpose_b=True)
        self.native_softmax = (native.softmax_bias(False) if ctx.native_kernels and self.softmax_dtype == ms.float32
                               else None)
        # inference: the summary in one native kernel (no gradient; training runs the ops below)
        self.native_summary = native.global_attention() if self.native_softmax is not None else None
        self.native_gate = native.sigmoid_gate() if self.native_softmax is not None else None

    def construct(self, q_data, m_data, q_mask, idx=None):
        return self.output(q_data, self.summary(m_data, q_mask, idx), idx)

    def summary(self, m_data, q_mask, idx=None):
        """The attention result per column, before gating: [B, H * d] (float32)."""
        k_rows, b, c = m_data.shape
        if self.native_summary is not None and not self.training:
            qw = self.take(self.query_w, idx).reshape(c, self.h * self.d).astype(ms.float32)
            return self.native_summary(m_data.astype(ms.float32), q_mask.astype(ms.float32),
                                       mask_bias(q_mask, ms.float32), qw,
                                       self.take(self.key_w, idx).astype(ms.float32),
                                       self.take(self.value_w, idx).astype(ms.float32))
        # float32 whatever the compute dtype: under float16 the full-size extra-MSA stack's backward through this
        # module gave non-finite query/key gradients at any loss scale (every fp16 step skipped, bench_train_fp16)
        dt = ms.float32
        x = m_data.astype(dt)
        mask = q_mask.astype(dt)
        # keys and values from one matmul, then columns-first at their small width: [B, K, 2d]
        kvw = ops.concat((self.take(self.key_w, idx), self.take(self.value_w, idx)), 1).astype(dt)
        kv = self.permute(kernels.matmul(x.reshape(k_rows * b, c), kvw).reshape(k_rows, b, 2 * self.d), (1, 0, 2))
        # masked mean over the leading axis: a reduction over the outermost axis of a contiguous array
        q_sum = (x * expand(mask.reshape(k_rows, b, 1), (k_rows, b, c))).sum(0)                   # [B, c]
        q_avg = q_sum / expand(mask.sum(0).reshape(b, 1) + 1e-10, (b, c))
        qw = self.take(self.query_w, idx).reshape(c, self.h * self.d).astype(dt)
        q = kernels.matmul(q_avg, qw).reshape(b, self.h, self.d) * (float(self.d) ** -0.5)      # [B, H, d]
        # zero query weights on the value half: logits = q . k without slicing kv
        q = ops.concat((q, ops.zeros_like(q)), 2)                                                   # [B, H, 2d]
        logits = self.bmm_t(q, kv)                                                                  # [B, H, K]
        bias = mask_bias(kernels.transpose(q_mask, (1, 0)), self.softmax_dtype)[:, None, :]
        if self.native_softmax is not None:        # float32 here whatever the compute dtype
            weights = self.native_softmax(logits, bias)
        else:
            weights = softmax_with_bias(logits, bias, self.softmax_dtype).astype(dt)
        avg = self.bmm(weights, kv)[:, :, self.d:]                                                  # [B, H, d]
        return avg.reshape(b, self.h * self.d)

    def output(self, q_data, avg, idx=None):
        """Gated output for rows ``q_data`` [K', B, c] from the column summaries ``avg`` [B, H * d]: [K', B, out]."""
        k_rows, b, c = q_data.shape
        dt = ms.float32
        hd = self.h * self.d
        ow = self.take(self.output_w, idx).reshape(hd, self.output_dim).astype(dt)
        ob = self.take(self.output_b, idx).astype(dt)
        if self.gating:
            gw = self.take(self.gating_w, idx).reshape(c, hd).astype(dt)
            gate = kernels.matmul(q_data.reshape(k_rows * b, c).astype(dt), gw)
            out = apply_gate(self, gate, self.take(self.gating_b, idx).reshape(hd).astype(dt), avg)
            out = ops.bias_add(kernels.matmul(out.reshape(k_rows * b, hd), ow), ob)
            return out.reshape(k_rows, b, self.output_dim).astype(self.dtype)
        out = (kernels.matmul(avg, ow) + expand(ob, (b, self.output_dim))).astype(self.dtype)
        return ops.broadcast_to(out.reshape(1, b, self.output_dim), (k_rows, b, self.output_dim))


class SharedDropout(nn.Cell):
    """Dropout with a host-sampled mask shared along ``broadcast_dim`` (AlphaFold's dropout_wrapper: per-row modules
    share the mask across rows, per-column modules across columns; ``None``: nothing shared).

    A *site*: ``key`` names its masks in the ``drop`` dict, ``dims`` is the activation's shape with symbolic sizes
    ('S' MSA rows, 'E' extra-MSA rows, 'N' residues, ints for channels) and ``stack`` the leading mask axes (e.g. the
    block index of a stacked module, 'T' for templates). ``construct(x, drop, idx)`` multiplies by
    ``drop[key][idx]`` (already scaled by 1/keep, see :mod:`mindsponge_fold.model.dropout_masks`); without ``drop`` or
    without the key it is the identity. A rate of 0 (or ``ctx.deterministic``) is a site with no masks.
    ``at_inference``: ``eval_dropout`` applies this site at inference (AlphaFold's ``dropout_wrapper`` sites; the
    structure module's dropout follows ``is_training`` only)."""

    def __init__(self, ctx, rate: float, broadcast_dim=None, key: str = "", dims=(), stack=(), at_inference=True):
        super().__init__()
        self.at_inference = bool(at_inference)
        self.rate = 0.0 if ctx.deterministic else float(rate)
        self.broadcast_dim = broadcast_dim
        self.key = str(key)
        self.dims = tuple(dims)
        self.stack = tuple(stack)

    def mask_shape(self, sizes: dict) -> tuple:
        """The mask's shape for concrete symbolic sizes (e.g. {'S': 128, 'N': 256, 'T': 4}): the stack axes flattened
        into one leading axis (template t, block i -> t * num_block + i), then the activation's shape with 1 on the
        shared axis."""
        dims = [sizes[d] if isinstance(d, str) else int(d) for d in self.dims]
        if self.broadcast_dim is not None:
            dims[self.broadcast_dim] = 1
        lead = 1
        for d in self.stack:
            lead *= sizes[d] if isinstance(d, str) else int(d)
        return (lead,) + tuple(dims)

    def construct(self, x, drop=None, idx=None):
        if drop is None or self.rate <= 0.0:
            return x
        if self.key not in drop:
            return x
        mask = drop[self.key]
        if isinstance(idx, int):
            mask = mask[idx]
        elif idx is not None:
            mask = ops.gather(mask, idx, 0)
        return x * expand(mask.astype(x.dtype), x.shape)


def dropout_broadcast_dim(config) -> int | None:
    """Which axis of a [rows, cols, c] activation shares the dropout mask, from an AlphaFold sub-config."""
    if not config.get("shared_dropout", True):
        return None
    return 0 if config.get("orientation", "per_row") == "per_row" else 1
