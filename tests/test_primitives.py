"""Primitives vs straightforward numpy implementations of AlphaFold's formulas (fp32), stacked weights in a
graph-mode while loop, and the fp16 path staying finite."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn

from mindsponge_fold.model.primitives import Attention, GlobalAttention, LayerNorm, Linear, ModelContext

ms.set_device("CPU")


def np_ln(x, s, o):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + 1e-5) * s + o


def np_softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def np_attention(p, q_data, m_data, mask, nb_bias):
    q = np.einsum("bqa,ahc->bqhc", q_data, p["query_w"]) * p["query_w"].shape[-1] ** -0.5
    k = np.einsum("bka,ahc->bkhc", m_data, p["key_w"])
    v = np.einsum("bka,ahc->bkhc", m_data, p["value_w"])
    logits = np.einsum("bqhc,bkhc->bhqk", q, k) + (1e9 * (mask - 1))[:, None, None, :] + nb_bias[None]
    w = np_softmax(np.clip(logits, -1e8, 1e8))
    avg = np.einsum("bhqk,bkhc->bqhc", w, v)
    gate = 1 / (1 + np.exp(-(np.einsum("bqc,chv->bqhv", q_data, p["gating_w"]) + p["gating_b"])))
    return np.einsum("bqhc,hco->bqo", avg * gate, p["output_w"]) + p["output_b"]


def np_global_attention(p, x, mask):
    d = p["key_w"].shape[-1]
    v = x @ p["value_w"]
    k = x @ p["key_w"]
    q_avg = (mask[..., None] * x).sum(1) / (mask.sum(1)[..., None] + 1e-10)
    q = np.einsum("ba,ahc->bhc", q_avg, p["query_w"]) * d ** -0.5
    logits = np.einsum("bhc,bkc->bhk", q, k) + (1e9 * (mask - 1))[:, None, :]
    w = np_softmax(logits)
    avg = np.einsum("bhk,bkc->bhc", w, v)
    gate = 1 / (1 + np.exp(-(np.einsum("bqc,chv->bqhv", x, p["gating_w"]) + p["gating_b"])))
    return np.einsum("bqhc,hco->bqo", avg[:, None] * gate, p["output_w"]) + p["output_b"]


def randomize(cell, rng):
    for prm in cell.get_parameters():
        prm.set_data(Tensor(rng.standard_normal(prm.shape).astype(np.float32) * 0.3))
    return {prm.name.split(".")[-1]: prm.asnumpy() for prm in cell.get_parameters()}


@pytest.fixture(autouse=True)
def graph_mode():
    ms.set_context(mode=ms.GRAPH_MODE)


def test_linear_layernorm_attention_match_numpy():
    rng = np.random.default_rng(0)
    ctx = ModelContext()
    lin, ln = Linear(ctx, 6, (2, 5)), LayerNorm(ctx, 6)
    att = Attention(ctx, 6, 4, num_head=2, output_dim=3, key_dim=8, value_dim=4)
    pl, pn, pa = randomize(lin, rng), randomize(ln, rng), randomize(att, rng)
    x = rng.standard_normal((3, 7, 6)).astype(np.float32)
    m = rng.standard_normal((3, 9, 4)).astype(np.float32)
    mask = (rng.random((3, 9)) > 0.3).astype(np.float32)
    bias = rng.standard_normal((2, 7, 9)).astype(np.float32)

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.lin, self.ln, self.att = lin, ln, att

        def construct(self, x, m, mask, bias):
            return self.lin(x), self.ln(x), self.att(x, m, mask, bias)

    y_lin, y_ln, y_att = (t.asnumpy() for t in Net()(Tensor(x), Tensor(m), Tensor(mask), Tensor(bias)))
    np.testing.assert_allclose(y_lin, np.einsum("...a,ahc->...hc", x, pl["weights"]) + pl["bias"], atol=1e-5)
    np.testing.assert_allclose(y_ln, np_ln(x, pn["scale"], pn["offset"]), atol=1e-5)
    np.testing.assert_allclose(y_att, np_attention(pa, x, m, mask, bias), rtol=1e-4, atol=1e-4)


def test_global_attention_matches_numpy():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 6, 8)).astype(np.float32)          # [columns, rows, c] for the numpy reference
    mask = (rng.random((5, 6)) > 0.3).astype(np.float32)
    mask[:, 0] = 1
    mask[3] = 0                                                     # a fully masked column: uniform weights
    for native_kernels in (False, True):
        ga = GlobalAttention(ModelContext(native_kernels=native_kernels), 8, num_head=2, output_dim=8)
        assert (ga.native_summary is not None) == native_kernels
        p = randomize(ga, rng)
        ref = np_global_attention(p, x, mask)
        # the module attends over the leading axis: [rows, columns, c]
        xt, mt = Tensor(x.transpose(1, 0, 2).copy()), Tensor(mask.T.copy())
        for training in (False, True):          # inference: the native summary kernel when native_kernels
            ga.set_train(training)
            y = ga(xt, xt, mt).asnumpy().transpose(1, 0, 2)
            np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


def test_stacked_weights_in_while_loop_equal_per_layer_application():
    """A stack of 3 LayerNorm+Linear layers run by a graph-mode while loop == applying each layer's weights."""
    rng = np.random.default_rng(2)
    ctx = ModelContext()

    class Stack(nn.Cell):
        def __init__(self):
            super().__init__()
            self.n = 3
            self.ln, self.lin = LayerNorm(ctx, 4, stack=(3,)), Linear(ctx, 4, 4, stack=(3,))

        def construct(self, x):
            i = Tensor(0, ms.int32)
            while i < self.n:
                x = x + self.lin(self.ln(x, i), i)
                i = i + 1
            return x

    net = Stack()
    pn, pl = randomize(net.ln, rng), randomize(net.lin, rng)
    x = rng.standard_normal((2, 5, 4)).astype(np.float32)
    ref = x.copy()
    for i in range(3):
        ref = ref + np_ln(ref, pn["scale"][i], pn["offset"][i]) @ pl["weights"][i] + pl["bias"][i]
    np.testing.assert_allclose(net(Tensor(x)).asnumpy(), ref, rtol=1e-5, atol=1e-5)
    # gradients flow to every stacked layer
    grads = ms.grad(lambda_free_loss(net), grad_position=None, weights=net.trainable_params())(Tensor(x))
    assert all(float(np.abs(g.asnumpy()[k]).sum()) > 0 for g in grads for k in range(3))


def lambda_free_loss(net):
    def loss(x):
        return (net(x) ** 2).sum()
    return loss


def test_fp16_attention_fully_masked_rows_stay_finite():
    rng = np.random.default_rng(3)
    ctx = ModelContext(dtype=ms.float16, fp32_cells=frozenset({"softmax", "layer_norm"}))
    att = Attention(ctx, 6, 6, num_head=2, output_dim=6)
    randomize(att, rng)
    x = Tensor(rng.standard_normal((2, 4, 6)).astype(np.float32))
    mask = np.ones((2, 4), np.float32)
    mask[1] = 0  # a fully masked batch row
    y = att(x, x, Tensor(mask)).asnumpy()
    assert y.dtype == np.float16 and np.isfinite(y).all()
    ctx32 = ModelContext()
    att32 = Attention(ctx32, 6, 6, num_head=2, output_dim=6)
    for a, b in zip(att32.get_parameters(), att.get_parameters()):
        a.set_data(b.data)
    y32 = att32(x, x, Tensor(mask)).asnumpy()
    np.testing.assert_allclose(y[0], y32[0], rtol=2e-2, atol=2e-2)
