"""The attention kernel ``softmax(clip(q k^T + mask_bias + pair_bias)) v``, and a memory-lean variant with its own
recomputing backward.

Written out with MindSpore ops, the attention of an Evoformer block dominates its training memory: the logits,
biases, clipped logits and softmax weights [B, H, Q, K] each exist in full, and the gradient graph keeps ~20 such
tensors alive (measured on the CPU backend: the extra-MSA row attention at 744 x 97 residues needs 4.6 GiB for its
gradient, 22 times one [B, H, Q, K] float32 tensor). At crop 256 with 1024 extra rows one such tensor is 2 GiB.

:class:`AttentionCore` is the plain kernel (MindSpore differentiates it). :class:`RecomputingAttentionCore` computes
the same function block of batch rows by block (a graph ``while`` loop over ``rows`` of the leading axis, chosen so
that one block's [rows, H, Q, K] tensor stays within :data:`BUDGET_BYTES`) and defines its own backward (``bprop``):
per block it recomputes the softmax weights from q, k and the biases and forms the gradients of q, k, v and of the
shared pair bias (``w * (dw - sum(dw * w))``, zero where the clip is active). Nothing of size [B, H, Q, K] is kept
between the forward and the backward; the gradient is the exact gradient of the forward (tests/test_attention_core.py
compares both kernels, values and gradients). The lean kernel is used with the host-driven recomputation
(``ctx.remat == 'host'``), whose gradient graphs hold one block each: inside the in-graph ``while`` loops of the whole
network's gradient graph MindSpore 2.10's runtime fails on a custom backward ("Invalid new ref count ... TensorMove").

With ``native`` (the fused C++ CPU kernels, :mod:`mindsponge_fold.model.native`) the bias additions, clip and softmax
are one kernel, and the recomputing backward forms the logits' gradient with the native one (the same function); at
inference (``not self.training``, float32) the whole attention is one native kernel that never forms the logits.

Only primitive operators are used in ``bprop`` (MindSpore 2.10 cannot inline the functional wrappers such as
``ops.softmax`` or ``ops.clip_by_value`` into a custom backward graph).
"""
from __future__ import annotations

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops

from mindsponge_fold.model import native as native_ops
from mindsponge_fold.model.kernels import transpose

BUDGET_BYTES = 16 * 2 ** 20     # one row block's [rows, H, Q, K] logits (softmax dtype) stay below this


def block_rows(batch: int, row_elems: int, item_bytes: int = 4, budget: int = BUDGET_BYTES) -> int:
    """Rows per block: the largest power of two whose [rows, H, Q, K] tensor fits ``budget`` (at least 1)."""
    rows = max(1, budget // max(1, row_elems * item_bytes))
    rows = 1 << (rows.bit_length() - 1)
    return min(batch, rows)


class AttentionCore(nn.Cell):
    """``construct(q, k, v, mask_bias, pair_bias)`` -> [B, Q, H, dv], differentiated by MindSpore.

    q [B, Q, H, d] (already scaled), k [B, K, H, d], v [B, K, H, dv] in the compute dtype, in the layout of the
    projections; ``mask_bias`` [B or 1, 1, 1, K] and ``pair_bias`` [H, Q, K] (or a dummy when ``has_pair_bias`` is
    False) in ``softmax_dtype``; logits are clipped to +-``clip`` (the reference fork's clip) before the softmax."""

    def __init__(self, compute_dtype, softmax_dtype, clip: float, has_pair_bias: bool,
                 budget: int = BUDGET_BYTES, native: bool = False):
        super().__init__()
        self.native = bool(native) and softmax_dtype == ms.float32 and float(clip) == native_ops.LOGIT_CLIP
        if self.native:
            self.native_softmax = native_ops.softmax_bias(bool(has_pair_bias))
            self.native_softmax_grad = native_ops.softmax_bias_grad(bool(has_pair_bias))
        # inference: the whole attention in one native kernel, no [B, H, Q, K] logits in memory
        self.fused = self.native and compute_dtype == ms.float32
        if self.fused:
            self.fused_attention = native_ops.attention(bool(has_pair_bias))
        self.dtype = compute_dtype
        self.sm_dtype = softmax_dtype
        self.clip = float(clip)
        self.has_pair_bias = bool(has_pair_bias)
        self.budget = int(budget)
        self.bmm = ops.BatchMatMul()
        self.bmm_t = ops.BatchMatMul(transpose_b=True)
        self.bmm_ta = ops.BatchMatMul(transpose_a=True)
        self.softmax = ops.Softmax(-1)
        self.maximum = ops.Maximum()
        self.minimum = ops.Minimum()
        self.cast = ops.Cast()
        self.gather = ops.Gather()
        self.reshape_op = ops.Reshape()
        self.expand_dims_op = ops.ExpandDims()
        self.transpose_op = ops.Transpose()
        self.sum_keep = ops.ReduceSum(keep_dims=True)
        self.sum = ops.ReduceSum(keep_dims=False)
        self.zeros_like = ops.ZerosLike()
        self.scatter_add = ops.TensorScatterAdd()
        self.scatter_update = ops.TensorScatterUpdate()
        self.less = ops.Less()
        self.greater = ops.Greater()
        self.logical_and = ops.LogicalAnd()

    # -- one block of rows (heads first: [rows, H, positions, d]) -------------------------------------------------
    def _heads_first(self, x, in_loop):
        # mint.permute allocates no index table, but inside the row loop of the custom backward MindSpore 2.10 fails
        # to compile it ("parameters number of the function is 6"); there the Transpose kernel's table is one
        # block's size
        if in_loop:
            return self.transpose_op(x, (0, 2, 1, 3))
        return transpose(x, (0, 2, 1, 3))

    def _logits(self, q, k, mb, pb):
        """Clipped logits [rows, H, Q, K] in the softmax dtype (bias = mask bias + pair bias, as the reference)."""
        logits = self.cast(self.bmm_t(q, k), self.sm_dtype)
        bias = mb
        if self.has_pair_bias:
            bias = bias + self.expand_dims_op(pb, 0)      # (implicit broadcasts: one block of rows at a time)
        logits = logits + bias
        return self.minimum(self.maximum(logits, -self.clip), self.clip)

    def _native_weights(self, raw, mb, pb):
        return self.native_softmax(raw, mb, pb) if self.has_pair_bias else self.native_softmax(raw, mb)

    def _weights(self, q, k, mb, pb):
        """Softmax weights [rows, H, Q, K] in the softmax dtype."""
        if self.native:
            return self._native_weights(self.cast(self.bmm_t(q, k), self.sm_dtype), mb, pb)
        return self.softmax(self._logits(q, k, mb, pb))

    def _forward_rows(self, q, k, v, mb, pb, in_loop=False):
        q, k, v = self._heads_first(q, in_loop), self._heads_first(k, in_loop), self._heads_first(v, in_loop)
        w = self._weights(q, k, mb, pb)
        return self._heads_first(self.bmm(self.cast(w, self.dtype), v), in_loop)

    def _backward_rows(self, q, k, v, mb, pb, dout, in_loop=False):
        """Gradients of q, k, v and (summed over the rows) of the pair bias for one block of rows."""
        q, k, v = self._heads_first(q, in_loop), self._heads_first(k, in_loop), self._heads_first(v, in_loop)
        dout = self._heads_first(dout, in_loop)
        if self.native:
            raw = self.cast(self.bmm_t(q, k), self.sm_dtype)
            w = self._native_weights(raw, mb, pb)
            dw = self.cast(self.bmm_t(dout, v), self.sm_dtype)
            dl = (self.native_softmax_grad(raw, mb, pb, w, dw) if self.has_pair_bias
                  else self.native_softmax_grad(raw, mb, w, dw))
        else:
            logits = self._logits(q, k, mb, pb)
            w = self.softmax(logits)
            dw = self.cast(self.bmm_t(dout, v), self.sm_dtype)
            dl = w * (dw - self.sum_keep(dw * w, -1))
            inside = self.logical_and(self.greater(logits, -self.clip), self.less(logits, self.clip))
            dl = dl * self.cast(inside, self.sm_dtype)
        dlc = self.cast(dl, self.dtype)
        dq = self._heads_first(self.bmm(dlc, k), in_loop)
        dk = self._heads_first(self.bmm_ta(dlc, q), in_loop)
        dv = self._heads_first(self.bmm_ta(self.cast(w, self.dtype), dout), in_loop)
        return dq, dk, dv, self.sum(dl, 0)

    def _rows(self, q, k):
        b, nq, h, _ = q.shape
        item = 4 if self.sm_dtype == ms.float32 else 2
        return block_rows(b, h * nq * k.shape[1], item, self.budget)

    def fuses(self) -> bool:
        """Whether a call now runs the fused kernel (native, float32, inference)."""
        return self.fused and not self.training

    def _fused(self, q, k, v, mask_bias, pair_bias):
        if self.has_pair_bias:
            return self.fused_attention(q, k, v, mask_bias, pair_bias)
        return self.fused_attention(q, k, v, mask_bias)

    def construct(self, q, k, v, mask_bias, pair_bias):
        if self.fuses():
            return self._fused(q, k, v, mask_bias, pair_bias)
        return self._forward_rows(q, k, v, mask_bias, pair_bias)


class RecomputingAttentionCore(AttentionCore):
    """:class:`AttentionCore` evaluated in blocks of batch rows, with a recomputing backward (module docstring).
    ``mask_bias`` gets no gradient."""

    # -- whole batch --------------------------------------------------------------------------------------------
    def construct(self, q, k, v, mask_bias, pair_bias):
        if self.fuses():
            return self._fused(q, k, v, mask_bias, pair_bias)
        b = q.shape[0]
        rows = self._rows(q, k)
        if rows >= b:
            return self._forward_rows(q, k, v, mask_bias, pair_bias)
        per_row_mask = mask_bias.shape[0] == b
        num = (b + rows - 1) // rows
        offsets = Tensor(np.arange(rows, dtype=np.int32))
        out_shape = (b,) + q.shape[1:3] + (v.shape[3],)           # [B, Q, H, dv]
        out = ops.broadcast_to(self.zeros_like(v.reshape(-1)[:1]).reshape((1, 1, 1, 1)), out_shape)
        j = Tensor(0, ms.int32)
        while j < num:
            idx = self.minimum(j * rows + offsets, b - 1)
            mb = self.gather(mask_bias, idx, 0) if per_row_mask else mask_bias
            part = self._forward_rows(self.gather(q, idx, 0), self.gather(k, idx, 0), self.gather(v, idx, 0), mb,
                                      pair_bias, True)
            out = self.scatter_update(out, idx.reshape(rows, 1), part)
            j = j + 1
        return out

    def bprop(self, q, k, v, mask_bias, pair_bias, out, dout):
        b = q.shape[0]
        rows = self._rows(q, k)
        if rows >= b:
            dq, dk, dv, dpb = self._backward_rows(q, k, v, mask_bias, pair_bias, dout)
            if not self.has_pair_bias:
                dpb = self.zeros_like(pair_bias)
            return dq, dk, dv, self.zeros_like(mask_bias), dpb
        per_row_mask = mask_bias.shape[0] == b
        num = (b + rows - 1) // rows
        offsets = Tensor(np.arange(rows, dtype=np.int32))
        dq, dk, dv = self.zeros_like(q), self.zeros_like(k), self.zeros_like(v)
        dpb = self.zeros_like(pair_bias)
        j = Tensor(0, ms.int32)
        while j < num:
            pos = j * rows + offsets
            idx = self.minimum(pos, b - 1)
            # the last block repeats row b-1 to fill up: those repeats get a zero cotangent, so add nothing
            first = self.reshape_op(self.cast(self.less(pos, b), dout.dtype), (rows, 1, 1, 1))
            mb = self.gather(mask_bias, idx, 0) if per_row_mask else mask_bias
            qc, kc, vc = self.gather(q, idx, 0), self.gather(k, idx, 0), self.gather(v, idx, 0)
            gq, gk, gv, gpb = self._backward_rows(qc, kc, vc, mb, pair_bias, self.gather(dout, idx, 0) * first, True)
            at = self.reshape_op(idx, (rows, 1))
            dq = self.scatter_add(dq, at, gq)
            dk = self.scatter_add(dk, at, gk)
            dv = self.scatter_add(dv, at, gv)
            if self.has_pair_bias:
                dpb = dpb + gpb
            j = j + 1
        return dq, dk, dv, self.zeros_like(mask_bias), dpb
