"""Evoformer pieces (Suppl. Alg. 7-15, 19) vs numpy re-statements of the supplement's formulas; the stacked block in
a graph-mode while loop vs block-by-block application; dropout and gradients in training mode."""
import copy

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn
from test_primitives import np_attention, np_global_attention
from trunk_fixtures import np_linear, np_ln, np_sigmoid, randomize, sub

from mindsponge_fold.common.config import load_config
from mindsponge_fold.model.evoformer import (EvoformerIteration, MSAColumnAttention, MSAColumnGlobalAttention,
                                             MSARowAttentionWithPairBias, OuterProductMean, TriangleAttention,
                                             TriangleMultiplication, run_stack)
from mindsponge_fold.model.primitives import ModelContext

ms.set_device("CPU")


@pytest.fixture(autouse=True)
def graph_mode():
    ms.set_context(mode=ms.GRAPH_MODE)


@pytest.fixture(scope="module")
def evo_cfg():
    return load_config("tiny").model.embeddings_and_evoformer.evoformer


def masked(rng, shape, p=0.2):
    m = (rng.random(shape) > p).astype(np.float32)
    m[0] = 1.0
    return m


class Apply(nn.Cell):
    """Runs each (cell, args) pair; graph mode compiles them together."""

    def __init__(self, cells):
        super().__init__()
        self.mods = nn.CellList(cells)

    def construct(self, args):
        outs = ()
        for i, cell in enumerate(self.mods):
            outs = outs + (cell(*args[i]),)
        return outs


def np_tri_mul(p, pair, mask, outgoing):
    x = np_ln(pair, sub(p, "layer_norm_input"))
    left = mask[..., None] * np_linear(x, sub(p, "left_projection")) * np_sigmoid(np_linear(x, sub(p, "left_gate")))
    right = mask[..., None] * np_linear(x, sub(p, "right_projection")) * np_sigmoid(np_linear(x, sub(p, "right_gate")))
    t = np.einsum("ikc,jkc->ijc", left, right) if outgoing else np.einsum("kjc,kic->ijc", left, right)
    t = np_linear(np_ln(t, sub(p, "center_layer_norm")), sub(p, "output_projection"))
    return t * np_sigmoid(np_linear(x, sub(p, "gating_linear")))


def np_opm(p, msa, mask):
    x = np_ln(msa, sub(p, "layer_norm_input"))
    left = mask[..., None] * np_linear(x, sub(p, "left_projection"))
    right = mask[..., None] * np_linear(x, sub(p, "right_projection"))
    out = np.einsum("sic,sje,cef->ijf", left, right, p["output_w"]) + p["output_b"]
    return out / (1e-3 + np.einsum("si,sj->ij", mask, mask)[..., None])


def np_tri_att(p, pair, mask, per_column):
    if per_column:
        pair, mask = pair.transpose(1, 0, 2), mask.T
    x = np_ln(pair, sub(p, "query_norm"))
    out = np_attention(sub(p, "attention"), x, x, mask, np.einsum("qkc,ch->hqk", x, p["feat_2d_weights"]))
    return out.transpose(1, 0, 2) if per_column else out


def np_row_att(p, msa, mask, pair):
    x = np_ln(msa, sub(p, "query_norm"))
    bias = np.einsum("qkc,ch->hqk", np_ln(pair, sub(p, "feat_2d_norm")), p["feat_2d_weights"])
    return np_attention(sub(p, "attention"), x, x, mask, bias)


def np_col_att(p, msa, mask, global_):
    x = np_ln(msa.transpose(1, 0, 2), sub(p, "query_norm"))
    if global_:
        out = np_global_attention(sub(p, "attention"), x, mask.T)
    else:
        out = np_attention(sub(p, "attention"), x, x, mask.T, np.zeros((1, 1, 1), np.float32))
    return out.transpose(1, 0, 2)


def test_pair_and_msa_modules_match_numpy(evo_cfg):
    rng = np.random.default_rng(0)
    ctx = ModelContext()
    s, n, cm, cz = 5, 7, 16, 8
    msa = rng.standard_normal((s, n, cm)).astype(np.float32)
    pair = rng.standard_normal((n, n, cz)).astype(np.float32)
    msa_mask = masked(rng, (s, n))
    pair_mask = masked(rng, (n, n))
    col_cfg = copy.deepcopy(evo_cfg.triangle_attention_ending_node)
    col_cfg.update(key_dim=12, value_dim=4)               # key/value widths other than the input's (templates)
    cells = [TriangleMultiplication(ctx, evo_cfg.triangle_multiplication_outgoing, cz),
             TriangleMultiplication(ctx, evo_cfg.triangle_multiplication_incoming, cz),
             OuterProductMean(ctx, evo_cfg.outer_product_mean, cm, cz),
             TriangleAttention(ctx, evo_cfg.triangle_attention_starting_node, cz),
             TriangleAttention(ctx, col_cfg, cz),
             MSARowAttentionWithPairBias(ctx, evo_cfg.msa_row_attention_with_pair_bias, cm, cz),
             MSAColumnAttention(ctx, evo_cfg.msa_column_attention, cm),
             MSAColumnGlobalAttention(ctx, evo_cfg.msa_column_attention, cm)]
    ps = [randomize(c, rng) for c in cells]
    t = [Tensor(a) for a in (msa, pair, msa_mask, pair_mask)]
    args = [(t[1], t[3]), (t[1], t[3]), (t[0], t[2]), (t[1], t[3]), (t[1], t[3]), (t[0], t[2], t[1]), (t[0], t[2]),
            (t[0], t[2])]
    got = [o.asnumpy() for o in Apply(cells)(args)]
    want = [np_tri_mul(ps[0], pair, pair_mask, True), np_tri_mul(ps[1], pair, pair_mask, False),
            np_opm(ps[2], msa, msa_mask), np_tri_att(ps[3], pair, pair_mask, False),
            np_tri_att(ps[4], pair, pair_mask, True), np_row_att(ps[5], msa, msa_mask, pair),
            np_col_att(ps[6], msa, msa_mask, False), np_col_att(ps[7], msa, msa_mask, True)]
    names = ["tri_mul_out", "tri_mul_in", "opm", "tri_att_start", "tri_att_end", "row_att", "col_att", "col_global"]
    for name, g, w in zip(names, got, want):
        assert g.shape == w.shape, name
        np.testing.assert_allclose(g, w, rtol=2e-4, atol=2e-4, err_msg=name)
    # outgoing and incoming really differ (the equations are not silently the same)
    assert np.abs(np_tri_mul(ps[0], pair, pair_mask, True) - np_tri_mul(ps[0], pair, pair_mask, False)).max() > 1e-2


class StackNet(nn.Cell):
    def __init__(self, block, n):
        super().__init__()
        self.block, self.n = block, n

    def construct(self, msa, pair, msa_mask, pair_mask, drop=None):
        return run_stack(self.block, self.n, msa, pair, msa_mask, pair_mask, drop)


def block_inputs(rng, s=4, n=6, cm=16, cz=8):
    return [Tensor(rng.standard_normal((s, n, cm)).astype(np.float32)),
            Tensor(rng.standard_normal((n, n, cz)).astype(np.float32)),
            Tensor(masked(rng, (s, n))), Tensor(masked(rng, (n, n)))]


def test_stack_while_loop_equals_blockwise_application(evo_cfg):
    """run_stack over 3 stacked blocks == calling the block with idx 0, 1, 2 in turn; each layer uses its own
    weights (a loop that reused layer 0 would fail)."""
    rng = np.random.default_rng(1)
    block = EvoformerIteration(ModelContext(), evo_cfg, 16, 8, False, stack=(3,))
    randomize(block, rng, scale=0.2)
    x = block_inputs(rng)
    msa, pair = (o.asnumpy() for o in StackNet(block, 3)(*x))
    m, z = x[0], x[1]
    for i in range(3):
        m, z = block(m, z, x[2], x[3], Tensor(i, ms.int32))
    np.testing.assert_allclose(msa, m.asnumpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(pair, z.asnumpy(), rtol=1e-4, atol=1e-4)
    m2, z2 = x[0], x[1]
    for _ in range(3):
        m2, z2 = block(m2, z2, x[2], x[3], Tensor(0, ms.int32))
    assert np.abs(z2.asnumpy() - pair).max() > 1e-3


def test_training_dropout_recompute_and_gradients(evo_cfg):
    """Training mode with dropout masks: the while loop applies block i's masks to block i (== blockwise application
    with those masks, != no dropout), and the gradients through the loop with per-block recompute (Cell.recompute)
    equal those without it, non-zero for every stacked layer."""
    from mindsponge_fold.model.dropout_masks import dropout_sites, mask_rng, sample_masks
    rng = np.random.default_rng(2)
    block = EvoformerIteration(ModelContext(), evo_cfg, 16, 8, False, stack=(2,))
    randomize(block, rng, scale=0.2)
    x = block_inputs(rng)
    masks = sample_masks(dropout_sites(block), {"S": 4, "N": 6}, mask_rng(0, 1, 2, 3))
    assert len(masks) == 5
    drop = ms.mutable({k: Tensor(v) for k, v in masks.items()})
    net = StackNet(block, 2)
    net.set_train(True)
    dropped = [o.asnumpy() for o in net(*x, drop)]
    m, z = x[0], x[1]
    for i in range(2):
        m, z = block(m, z, x[2], x[3], Tensor(i, ms.int32), drop)
    np.testing.assert_allclose(dropped[0], m.asnumpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dropped[1], z.asnumpy(), rtol=1e-5, atol=1e-5)
    assert np.abs(dropped[1] - net(*x)[1].asnumpy()).max() > 1e-2

    def gradients(recompute):
        b = copy.deepcopy(block) if recompute else block
        if recompute:
            b.recompute()
        stack = StackNet(b, 2)
        stack.set_train(True)

        def loss(msa, pair, msa_mask, pair_mask):
            m, z = stack(msa, pair, msa_mask, pair_mask, drop)
            return (m ** 2).sum() + (z ** 2).sum()

        params = stack.trainable_params()
        return params, [g.asnumpy() for g in ms.grad(loss, grad_position=None, weights=params)(*x)]

    params, plain = gradients(False)
    _, recomputed = gradients(True)
    assert len(plain) == len(params) > 50
    for prm, g, r in zip(params, plain, recomputed):
        assert all(np.abs(g[k]).sum() > 0 for k in range(2)), prm.name
        # Recomputation reorders float32 sums (CI measured 8.6e-6 on an entry of a gradient whose largest entry is ~11;
        # 8.3e-7 on a near-zero one): tolerance relative to the gradient's scale, at least 2e-6; a wrong recomputed
        # forward differs by O(scale).
        np.testing.assert_allclose(r, g, rtol=1e-5, atol=2e-6 * max(1.0, float(np.abs(g).max())), err_msg=prm.name)
