"""The Evoformer block and its pieces (Jumper et al. 2021, Suppl. Alg. 6-15, 18-19), with stacked weights.

Every module returns the *update* of its input (the caller adds it, after dropout). Activations have no batch axis:
msa [N_seq, N_res, c_m], pair [N_res, N_res, c_z]; masks msa [N_seq, N_res], pair [N_res, N_res].
Each Cell takes ``idx``: the layer index into its stacked parameters (``None`` for un-stacked modules).

:func:`run_stack` runs a stacked block with a graph-mode ``while`` loop (compile time flat in the depth).
"""
from __future__ import annotations

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, ops

from mindsponge_fold.model import chunking, kernels
from mindsponge_fold.model.primitives import (Attention, GlobalAttention, LayerNorm, Linear, Module, SharedDropout,
                                              dropout_broadcast_dim, expand)


def add_normal_param(module: Module, name: str, shape, stddev: float):
    """Parameter ``stack + shape`` drawn from Normal(0, stddev) (AlphaFold's ``feat_2d_weights`` initialiser)."""
    full = module.stack + tuple(int(s) for s in shape)
    value = (module._rng.standard_normal(full) * stddev).astype(np.float32)
    setattr(module, name, Parameter(Tensor(value), name=name))


def pair_bias(module: Module, pair, weights):
    """pair [Q, K, c] (layer-normed) x weights [c, H] -> attention bias [H, Q, K] (in ``module``'s dtype)."""
    q, k, c = pair.shape
    h = weights.shape[-1]
    b = kernels.matmul(pair.reshape(q * k, c).astype(module.dtype), weights.astype(module.dtype))
    return module.permute(b.reshape(q, k, h), (2, 0, 1))


class Transition(Module):
    """Suppl. Alg. 9 (MSATransition) / 15 (PairTransition): LayerNorm, Linear(n*c), ReLU, Linear(c)."""

    def __init__(self, ctx, config, channels, stack=()):
        super().__init__(ctx, stack)
        hidden = int(channels * config.num_intermediate_factor)
        self.input_layer_norm = LayerNorm(ctx, channels, stack)
        self.transition1 = Linear(ctx, channels, hidden, initializer="relu", stack=stack, relu=True)
        self.transition2 = Linear(ctx, hidden, channels, initializer="final", stack=stack)
        self.channels, self.hidden = int(channels), hidden

    def construct(self, act, mask, idx=None):
        rows, cols = act.shape[0], act.shape[1]
        chunk = self.rows_per_chunk(rows, cols * (self.hidden + self.channels), cols * self.channels)
        return chunking.map_rows(self._transition, chunk, (act,), (idx,), (cols, self.channels), self.dtype)

    def _transition(self, act, idx):
        x = self.input_layer_norm(act, idx)
        return self.transition2(self.transition1(x, idx), idx)


class MSARowAttentionWithPairBias(Module):
    """Suppl. Alg. 7: gated self-attention along each MSA row, biased by a projection of the pair representation."""

    def __init__(self, ctx, config, msa_channel, pair_channel, stack=()):
        super().__init__(ctx, stack)
        self.query_norm = LayerNorm(ctx, msa_channel, stack)
        self.feat_2d_norm = LayerNorm(ctx, pair_channel, stack)
        add_normal_param(self, "feat_2d_weights", (pair_channel, config.num_head), pair_channel ** -0.5)
        self.attention = Attention(ctx, msa_channel, msa_channel, config.num_head, msa_channel,
                                   gating=config.gating, stack=stack)

    def construct(self, msa, msa_mask, pair, idx=None):
        x = self.query_norm(msa, idx)
        bias = pair_bias(self, self.feat_2d_norm(pair, idx), self.take(self.feat_2d_weights, idx))
        return self.attention(x, x, msa_mask, bias, idx)


class MSAColumnAttention(Module):
    """Suppl. Alg. 8: gated self-attention along each MSA column."""

    def __init__(self, ctx, config, msa_channel, stack=()):
        super().__init__(ctx, stack)
        self.query_norm = LayerNorm(ctx, msa_channel, stack)
        self.attention = Attention(ctx, msa_channel, msa_channel, config.num_head, msa_channel,
                                   gating=config.gating, stack=stack)

    def construct(self, msa, msa_mask, idx=None):
        x = self.query_norm(self.permute(msa, (1, 0, 2)), idx)
        out = self.attention(x, x, kernels.transpose(msa_mask, (1, 0)), None, idx)
        return self.permute(out, (1, 0, 2))


class MSAColumnGlobalAttention(Module):
    """Suppl. Alg. 19: global (mean-query) attention along each extra-MSA column."""

    def __init__(self, ctx, config, msa_channel, stack=()):
        super().__init__(ctx, stack)
        self.query_norm = LayerNorm(ctx, msa_channel, stack)
        self.attention = GlobalAttention(ctx, msa_channel, config.num_head, msa_channel, gating=config.gating,
                                         stack=stack)

    def construct(self, msa, msa_mask, idx=None):
        # in the stored [rows, cols, c] layout (GlobalAttention attends over the leading axis): no permutes
        x = self.query_norm(msa, idx)
        return self.attention(x, x, msa_mask, idx)


class TriangleAttention(Module):
    """Suppl. Alg. 13 (starting node, orientation per_row) / 14 (ending node, per_column)."""

    def __init__(self, ctx, config, pair_channel, stack=()):
        super().__init__(ctx, stack)
        if config.orientation not in ("per_row", "per_column"):
            raise ValueError(f"triangle attention orientation must be per_row or per_column, got {config.orientation}")
        self.per_column = config.orientation == "per_column"
        self.query_norm = LayerNorm(ctx, pair_channel, stack)
        add_normal_param(self, "feat_2d_weights", (pair_channel, config.num_head), pair_channel ** -0.5)
        self.attention = Attention(ctx, pair_channel, pair_channel, config.num_head, pair_channel,
                                   key_dim=config.get("key_dim", pair_channel),
                                   value_dim=config.get("value_dim", pair_channel),
                                   gating=config.gating, stack=stack)

    def construct(self, pair, pair_mask, idx=None):
        if self.per_column:
            pair = self.permute(pair, (1, 0, 2))
            pair_mask = kernels.transpose(pair_mask, (1, 0))
        x = self.query_norm(pair, idx)
        bias = pair_bias(self, x, self.take(self.feat_2d_weights, idx))
        out = self.attention(x, x, pair_mask, bias, idx)
        if self.per_column:
            out = self.permute(out, (1, 0, 2))
        return out


class TriangleMultiplication(Module):
    """Suppl. Alg. 11 (outgoing edges, 'ikc,jkc->ijc') / 12 (incoming edges, 'kjc,kic->ijc'), unfused weights."""

    EQUATIONS = {"ikc,jkc->ijc": True, "kjc,kic->ijc": False}

    def __init__(self, ctx, config, pair_channel, stack=()):
        super().__init__(ctx, stack)
        if config.get("fuse_projection_weights", False):
            raise ValueError("fused triangle-multiplication weights are not supported; convert them to the unfused "
                             "left/right_projection and left/right_gate layout")
        if config.equation not in self.EQUATIONS:
            raise ValueError(f"unknown triangle multiplication equation {config.equation!r}")
        self.outgoing = self.EQUATIONS[config.equation]
        ci = self.ci = int(config.num_intermediate_channel)
        self.layer_norm_input = LayerNorm(ctx, pair_channel, stack)
        self.left_projection = Linear(ctx, pair_channel, ci, stack=stack)
        self.right_projection = Linear(ctx, pair_channel, ci, stack=stack)
        self.left_gate = Linear(ctx, pair_channel, ci, initializer="final", bias_init=1.0, stack=stack)
        self.right_gate = Linear(ctx, pair_channel, ci, initializer="final", bias_init=1.0, stack=stack)
        self.center_layer_norm = LayerNorm(ctx, ci, stack)
        self.output_projection = Linear(ctx, ci, pair_channel, initializer="final", stack=stack)
        self.gating_linear = Linear(ctx, pair_channel, pair_channel, initializer="final", bias_init=1.0, stack=stack)
        self.bmm_t = ops.BatchMatMul(transpose_b=True)

    def construct(self, pair, pair_mask, idx=None):
        x = self.layer_norm_input(pair, idx)
        mask = expand(pair_mask[..., None].astype(self.dtype), x.shape[:2] + (self.ci,))
        left = mask * self.left_projection(x, idx) * ops.sigmoid(self.left_gate(x, idx))
        right = mask * self.right_projection(x, idx) * ops.sigmoid(self.right_gate(x, idx))
        if self.outgoing:
            # out[i, j] = sum_k left[i, k] right[j, k]
            prod = self.bmm_t(self.permute(left, (2, 0, 1)), self.permute(right, (2, 0, 1)))
        else:
            # out[i, j] = sum_k right[k, i] left[k, j]
            prod = self.bmm_t(self.permute(right, (2, 1, 0)), self.permute(left, (2, 1, 0)))
        act = self.center_layer_norm(self.permute(prod, (1, 2, 0)), idx)
        act = self.output_projection(act, idx)
        return act * ops.sigmoid(self.gating_linear(x, idx))


class OuterProductMean(Module):
    """Suppl. Alg. 10: mean over MSA rows of the outer product of two projections, projected to the pair channels."""

    def __init__(self, ctx, config, msa_channel, pair_channel, stack=()):
        super().__init__(ctx, stack)
        oc = config.num_outer_channel
        self.oc, self.pair_channel = oc, pair_channel
        self.layer_norm_input = LayerNorm(ctx, msa_channel, stack)
        self.left_projection = Linear(ctx, msa_channel, oc, stack=stack)
        self.right_projection = Linear(ctx, msa_channel, oc, stack=stack)
        self.add_param("output_w", (oc, oc, pair_channel), "zeros" if ctx.zero_init else "relu", (oc, oc))
        self.add_param("output_b", (pair_channel,), "zeros")

    def construct(self, msa, msa_mask, idx=None):
        s, n, _ = msa.shape
        oc = self.oc
        mask = msa_mask.astype(self.dtype)
        x = self.layer_norm_input(msa, idx)
        mask3 = expand(mask[..., None], (s, n, oc))
        left = mask3 * self.left_projection(x, idx)                                 # [S, N, oc]
        right = (mask3 * self.right_projection(x, idx)).reshape(s, n * oc)
        norm = kernels.matmul_ta(mask, mask)                                          # [N, N] rows both present
        w = self.take(self.output_w, idx).reshape(oc * oc, self.pair_channel).astype(self.dtype)
        b = self.take(self.output_b, idx).astype(self.dtype)
        chunk = self.rows_per_chunk(n, n * (2 * oc * oc + self.pair_channel), n * self.pair_channel)
        if chunk >= n:
            # outer[(i, c), (j, e)] = sum_s left[s, i, c] right[s, j, e]: the product with left transposed, no permute
            # of left (at 5120 extra rows, N_res 100: 521 ms instead of 118 ms permute + 584 ms product)
            outer = kernels.matmul_ta(left.reshape(s, n * oc), right)
            return self._project(outer, norm, w, b).astype(self.dtype)
        return chunking.map_rows(self._outer_rows, chunk, (self.permute(left, (1, 2, 0)), norm), (right, w, b),
                                 (n, self.pair_channel), self.dtype)

    def _outer_rows(self, left_t, norm, right, w, b):
        """Rows i of the update: left_t [I, oc, S], norm [I, N], right [S, N*oc] -> [I, N, c_z]."""
        rows, oc, s = left_t.shape
        return self._project(kernels.matmul(left_t.reshape(rows * oc, s), right), norm, w, b)

    def _project(self, outer, norm, w, b):
        """outer [(i, c), (j, e)] for rows i, norm [I, N] -> the update [I, N, c_z] (mean, projected)."""
        rows, n = norm.shape
        oc = self.oc
        outer = self.permute(outer.reshape(rows, oc, n, oc), (0, 2, 1, 3)).reshape(rows * n, oc * oc)
        act = ops.bias_add(kernels.matmul(outer, w), b).reshape(rows, n, self.pair_channel)
        return act / expand(1e-3 + norm[..., None], act.shape)


MSA_SITES = ("msa_row_attention_with_pair_bias", "msa_column_attention", "msa_transition")
PAIR_SITES = ("outer_product_mean", "triangle_multiplication_outgoing", "triangle_multiplication_incoming",
              "triangle_attention_starting_node", "triangle_attention_ending_node", "pair_transition")


class EvoformerIteration(Module):
    """One Evoformer block (Suppl. Alg. 6 lines 2-10); with ``is_extra_msa`` the extra-MSA block (Alg. 18), whose
    column attention is global (Alg. 19). Parameters are stacked over the ``stack`` blocks.

    ``construct(msa, pair, msa_mask, pair_mask, idx, drop, drop_idx)``: ``idx`` picks the layer's weights, ``drop``
    holds the dropout masks of the whole stack (keys ``<name>/<module>``, leading block axis), taken at ``drop_idx``
    (default ``idx``). ``name`` is the stack's AlphaFold name (``evoformer_iteration`` / ``extra_msa_stack``) and
    ``num_block`` its depth, which the dropout masks are stacked over even when this Cell holds one layer's weights
    (the host-driven recomputation builds such single-layer copies)."""

    def __init__(self, ctx, config, msa_channel, pair_channel, is_extra_msa, stack=(), name=None, num_block=None):
        super().__init__(ctx, stack)
        self.is_extra_msa = bool(is_extra_msa)
        self.stack_name = name or ("extra_msa_stack" if self.is_extra_msa else "evoformer_iteration")
        self.outer_first = bool(config.outer_product_mean.first)
        self.msa_row_attention_with_pair_bias = MSARowAttentionWithPairBias(
            ctx, config.msa_row_attention_with_pair_bias, msa_channel, pair_channel, stack)
        if self.is_extra_msa:
            self.msa_column_global_attention = MSAColumnGlobalAttention(ctx, config.msa_column_attention,
                                                                        msa_channel, stack)
        else:
            self.msa_column_attention = MSAColumnAttention(ctx, config.msa_column_attention, msa_channel, stack)
        self.msa_transition = Transition(ctx, config.msa_transition, msa_channel, stack)
        self.outer_product_mean = OuterProductMean(ctx, config.outer_product_mean, msa_channel, pair_channel, stack)
        self.triangle_multiplication_outgoing = TriangleMultiplication(
            ctx, config.triangle_multiplication_outgoing, pair_channel, stack)
        self.triangle_multiplication_incoming = TriangleMultiplication(
            ctx, config.triangle_multiplication_incoming, pair_channel, stack)
        self.triangle_attention_starting_node = TriangleAttention(
            ctx, config.triangle_attention_starting_node, pair_channel, stack)
        self.triangle_attention_ending_node = TriangleAttention(
            ctx, config.triangle_attention_ending_node, pair_channel, stack)
        self.pair_transition = Transition(ctx, config.pair_transition, pair_channel, stack)

        depth = tuple(stack) if num_block is None else (int(num_block),)
        msa_dims = ("E" if self.is_extra_msa else "S", "N", int(msa_channel))
        pair_dims = ("N", "N", int(pair_channel))

        def drop(site):
            sub = config[site]
            return SharedDropout(ctx, sub.dropout_rate, dropout_broadcast_dim(sub), key=f"{self.stack_name}/{site}",
                                 dims=msa_dims if site in MSA_SITES else pair_dims, stack=depth)

        self.drop_row = drop("msa_row_attention_with_pair_bias")
        self.drop_col = drop("msa_column_attention")
        self.drop_msa_transition = drop("msa_transition")
        self.drop_outer = drop("outer_product_mean")
        self.drop_tri_out = drop("triangle_multiplication_outgoing")
        self.drop_tri_in = drop("triangle_multiplication_incoming")
        self.drop_tri_start = drop("triangle_attention_starting_node")
        self.drop_tri_end = drop("triangle_attention_ending_node")
        self.drop_pair_transition = drop("pair_transition")

    def construct(self, msa, pair, msa_mask, pair_mask, idx=None, drop=None, drop_idx=None):
        d = idx if drop_idx is None else drop_idx
        if self.outer_first:
            pair = pair + self.drop_outer(self.outer_product_mean(msa, msa_mask, idx), drop, d)
        msa = msa + self.drop_row(self.msa_row_attention_with_pair_bias(msa, msa_mask, pair, idx), drop, d)
        if self.is_extra_msa:
            msa = msa + self.drop_col(self.msa_column_global_attention(msa, msa_mask, idx), drop, d)
        else:
            msa = msa + self.drop_col(self.msa_column_attention(msa, msa_mask, idx), drop, d)
        msa = msa + self.drop_msa_transition(self.msa_transition(msa, msa_mask, idx), drop, d)
        if not self.outer_first:
            pair = pair + self.drop_outer(self.outer_product_mean(msa, msa_mask, idx), drop, d)
        pair = pair + self.drop_tri_out(self.triangle_multiplication_outgoing(pair, pair_mask, idx), drop, d)
        pair = pair + self.drop_tri_in(self.triangle_multiplication_incoming(pair, pair_mask, idx), drop, d)
        pair = pair + self.drop_tri_start(self.triangle_attention_starting_node(pair, pair_mask, idx), drop, d)
        pair = pair + self.drop_tri_end(self.triangle_attention_ending_node(pair, pair_mask, idx), drop, d)
        pair = pair + self.drop_pair_transition(self.pair_transition(pair, pair_mask, idx), drop, d)
        return msa, pair


def run_stack(block, num_block, msa, pair, msa_mask, pair_mask, drop=None):
    """Apply the stacked ``block`` ``num_block`` times (layer i uses weights [i] and dropout masks [i]) in a
    graph-mode while loop.

    Suppl. Alg. 2 lines 14-17 (extra-MSA stack) and Alg. 6 (Evoformer stack). A single block runs without the loop
    (a one-pass while loop costs compile time: ~0.4 s per stack on CPU)."""
    i = Tensor(0, ms.int32)
    if num_block == 1:
        return block(msa, pair, msa_mask, pair_mask, i, drop)
    while i < num_block:
        msa, pair = block(msa, pair, msa_mask, pair_mask, i, drop)
        i = i + 1
    return msa, pair


def make_stack_block(ctx, model_config, is_extra_msa, stack=None):
    """The stacked EvoformerIteration of the main (``evoformer_iteration``) or extra-MSA (``extra_msa_stack``)
    stack; ``stack=()`` builds a single layer's weights with the stack's dropout sites (host recomputation).
    With ``ctx.remat == 'graph'`` the block is recomputed in the backward pass (``Cell.recompute``)."""
    c = model_config.embeddings_and_evoformer
    depth = int(c.extra_msa_stack_num_block if is_extra_msa else c.evoformer_num_block)
    stack = (depth,) if stack is None else tuple(stack)
    if is_extra_msa:
        block = EvoformerIteration(ctx, c.evoformer, c.extra_msa_channel, c.pair_channel, True, stack=stack,
                                   num_block=depth)
    else:
        block = EvoformerIteration(ctx, c.evoformer, c.msa_channel, c.pair_channel, False, stack=stack,
                                   num_block=depth)
    if ctx.remat == "graph":
        block.recompute()
    return block


__all__ = ["Transition", "MSARowAttentionWithPairBias", "MSAColumnAttention", "MSAColumnGlobalAttention",
           "TriangleAttention", "TriangleMultiplication", "OuterProductMean", "EvoformerIteration", "run_stack",
           "make_stack_block", "add_normal_param", "pair_bias"]
