"""The attention kernel and its memory-lean, recomputing variant (mindsponge_fold.model.attention_core): equal values
and gradients (q, k, v, pair bias) to MindSpore's automatic differentiation of the plain kernel, with masked keys, a
fully masked batch row, blocks that do not divide the batch, and without a pair bias; forward against numpy."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn

from mindsponge_fold.model.attention_core import AttentionCore, RecomputingAttentionCore, block_rows
from mindsponge_fold.model.primitives import mask_bias

ms.set_device("CPU")
B, Q, K, H, D = 7, 5, 6, 3, 4


@pytest.fixture(scope="module", autouse=True)
def graph_mode():
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=previous)


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((B, n, H, D)).astype(np.float32) for n in (Q, K, K))
    mask = (rng.random((B, K)) > 0.3).astype(np.float32)
    mask[2] = 0.0                                   # a fully masked row: uniform weights through the clip
    pb = rng.standard_normal((H, Q, K)).astype(np.float32)
    cot = rng.standard_normal((B, Q, H, D)).astype(np.float32)
    return q, k, v, mask, pb, cot


def numpy_attention(q, k, v, mask, pb, with_bias):
    logits = np.einsum("bqhd,bkhd->bhqk", q.astype(np.float64), k) + (1e9 * (mask - 1))[:, None, None, :]
    if with_bias:
        logits = logits + pb[None]
    logits = np.clip(logits, -1e8, 1e8)
    w = np.exp(logits - logits.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    return np.einsum("bhqk,bkhd->bqhd", w, v)


class Cotangent(nn.Cell):
    """<core(q, k, v, bias, pb), cot>: its gradient is the kernel's vector-Jacobian product."""

    def __init__(self, core):
        super().__init__()
        self.core = core

    def construct(self, q, k, v, bias, pb, cot):
        return (self.core(q, k, v, bias, pb) * cot).sum()


def run(core_cls, with_bias, budget=None):
    q, k, v, mask, pb, cot = inputs()
    kw = {} if budget is None else {"budget": budget}
    core = core_cls(ms.float32, ms.float32, 1e8, with_bias, **kw)
    bias = mask_bias(Tensor(mask), ms.float32).reshape(B, 1, 1, K)
    args = (Tensor(q), Tensor(k), Tensor(v), bias, Tensor(pb), Tensor(cot))
    out = core(*args[:5]).asnumpy()
    grads = ms.grad(Cotangent(core), grad_position=(0, 1, 2, 4))(*args)
    return out, [g.asnumpy() for g in grads]


@pytest.mark.parametrize("with_bias", [True, False])
def test_recomputing_kernel_equals_autodiff(with_bias):
    row_bytes = H * Q * K * 4
    assert block_rows(B, H * Q * K, 4, 3 * row_bytes) == 2         # blocks of 2 rows: 2+2+2+1 (last one padded)
    plain_out, plain_grads = run(AttentionCore, with_bias)
    q, k, v, mask, pb, _ = inputs()
    np.testing.assert_allclose(plain_out, numpy_attention(q, k, v, mask, pb, with_bias), rtol=1e-5, atol=1e-6)
    for budget in (None, 3 * row_bytes):                            # one block; blocks of 2 rows
        out, grads = run(RecomputingAttentionCore, with_bias, budget)
        np.testing.assert_allclose(out, plain_out, rtol=1e-6, atol=1e-7)
        for name, g, ref in zip(("q", "k", "v", "pair_bias"), grads, plain_grads):
            if name == "pair_bias" and not with_bias:
                assert not np.any(g)
                continue
            assert np.any(ref), name
            np.testing.assert_allclose(g, ref, rtol=1e-5, atol=1e-6, err_msg=f"{name}, budget {budget}")
