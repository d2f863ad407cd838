"""The fused C++ CPU kernels (mindsponge_fold.model.native): LayerNorm, the attention softmax with its biases and
clip, and their backward kernels give MindSpore's values and gradients (float32 rounding), in the attention cores,
the global attention and whole modules; the inference-only kernels (permute, bias, gate) give numpy's values; the
build cache, the config switch and the errors when they are required but cannot be built."""
import os

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn, ops

from mindsponge_fold.common.config import ConfigError, load_config
from mindsponge_fold.model import native
from mindsponge_fold.model.attention_core import AttentionCore, RecomputingAttentionCore
from mindsponge_fold.model.primitives import GlobalAttention, LayerNorm, ModelContext, mask_bias

ms.set_device("CPU")
pytestmark = pytest.mark.skipif(native.library()[0] is None,
                                reason=f"native kernels unavailable here: {native.library()[1]}")


@pytest.fixture(scope="module", autouse=True)
def graph_mode():
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=previous)


class Cotangent(nn.Cell):
    """<net(*inputs), cot>: its gradient is the network's vector-Jacobian product."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def construct(self, *args):
        return (self.net(*args[:-1]) * args[-1]).sum()


def value_and_grads(net, args, positions):
    out = net(*args).asnumpy()
    cot = Tensor(np.random.default_rng(7).standard_normal(out.shape).astype(np.float32))
    grads = ms.grad(Cotangent(net), grad_position=positions)(*args, cot)
    grads = grads if isinstance(grads, (tuple, list)) else (grads,)
    return out, [g.asnumpy() for g in grads]


class StackedNorm(nn.Cell):
    """A stacked LayerNorm (weights gathered per layer) followed by a non-linearity, differentiated in a graph."""

    def __init__(self, native_kernels):
        super().__init__()
        self.norm = LayerNorm(ModelContext(native_kernels=native_kernels, seed=3), 24, stack=(3,))
        rng = np.random.default_rng(1)
        self.norm.scale.set_data(Tensor(rng.uniform(0.5, 1.5, (3, 24)).astype(np.float32)))
        self.norm.offset.set_data(Tensor(rng.standard_normal((3, 24)).astype(np.float32)))

    def construct(self, x, idx):
        return ops.tanh(self.norm(x, idx))


@pytest.mark.parametrize("shape", [(5, 7, 24), (301, 24), (64, 40, 24)])
def test_layer_norm_values_and_gradients(shape):
    rng = np.random.default_rng(0)
    x = Tensor((rng.standard_normal(shape) * 3 + 1).astype(np.float32))
    idx = Tensor(np.int32(2))
    results = {}
    for flag in (False, True):
        net = StackedNorm(flag)
        assert net.norm.native == flag
        out, (dx,) = value_and_grads(net, (x, idx), (0,))
        params = ms.grad(Cotangent(net), grad_position=None, weights=net.trainable_params())(
            x, idx, Tensor(np.random.default_rng(7).standard_normal(out.shape).astype(np.float32)))
        results[flag] = (out, dx, [p.asnumpy() for p in params])
    (out0, dx0, p0), (out1, dx1, p1) = results[False], results[True]
    np.testing.assert_allclose(out1, out0, rtol=1e-5, atol=2e-6)
    np.testing.assert_allclose(dx1, dx0, rtol=1e-4, atol=2e-6)
    for a, b in zip(p1, p0):
        assert np.any(b[2]) and not np.any(b[:2])        # only the gathered layer's weights get a gradient
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


B, Q, K, H, D = 7, 5, 6, 3, 4


def attention_inputs():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((B, n, H, D)).astype(np.float32) * 2 for n in (Q, K, K))
    mask = (rng.random((B, K)) > 0.3).astype(np.float32)
    mask[2] = 0.0                                   # fully masked: uniform weights, no gradient through the clip
    pb = rng.standard_normal((H, Q, K)).astype(np.float32)
    bias = mask_bias(Tensor(mask), ms.float32).reshape(B, 1, 1, K)
    return Tensor(q), Tensor(k), Tensor(v), bias, Tensor(pb)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("core_cls", [AttentionCore, RecomputingAttentionCore])
def test_attention_softmax_kernel_equals_autodiff(core_cls, with_bias):
    args = attention_inputs()
    plain = AttentionCore(ms.float32, ms.float32, 1e8, with_bias)
    ref_out, ref_grads = value_and_grads(plain, args, (0, 1, 2, 4))
    row_bytes = H * Q * K * 4
    for budget in ((None, 3 * row_bytes) if core_cls is RecomputingAttentionCore else (None,)):
        kw = {} if budget is None else {"budget": budget}
        core = core_cls(ms.float32, ms.float32, 1e8, with_bias, native=True, **kw)
        core.set_train(True)                # training: the softmax kernel and its gradient (not the fused one)
        assert core.native and not core.fuses()
        out, grads = value_and_grads(core, args, (0, 1, 2, 4))
        np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-6)
        for name, g, ref in zip(("q", "k", "v", "pair_bias"), grads, ref_grads):
            if name == "pair_bias" and not with_bias:
                assert not np.any(g)
                continue
            assert np.any(ref), name
            np.testing.assert_allclose(g, ref, rtol=1e-4, atol=1e-5 * np.abs(ref).max(), err_msg=f"{name}, {budget}")
        # the fully masked row: zero gradient for its queries (the clip is active on every logit)
        assert not np.any(grads[0][2])


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("shared_mask", [True, False])
def test_fused_attention_at_inference(with_bias, shared_mask):
    """At inference the whole attention is one kernel (no logits): same values as the plain kernel, with a mask per
    batch row or one shared by all, and a fully masked row."""
    q, k, v, bias, pb = attention_inputs()
    if shared_mask:
        bias = bias[3:4]
    plain = AttentionCore(ms.float32, ms.float32, 1e8, with_bias)
    ref = plain(q, k, v, bias, pb).asnumpy()
    for core_cls in (AttentionCore, RecomputingAttentionCore):
        core = core_cls(ms.float32, ms.float32, 1e8, with_bias, native=True)
        core.set_train(False)
        assert core.fuses()
        np.testing.assert_allclose(core(q, k, v, bias, pb).asnumpy(), ref, rtol=1e-5, atol=1e-6)
        core.set_train(True)
        assert not core.fuses()
    assert not AttentionCore(ms.float16, ms.float32, 1e8, with_bias, native=True).fused     # float32 only


@pytest.mark.parametrize("nq, nk, heads, d", [(29, 45, 2, 32), (13, 70, 3, 8), (25, 16, 1, 16), (12, 33, 2, 20),
                                               (1, 1, 1, 3)])
def test_fused_attention_tiles_and_widths(nq, nk, heads, d):
    """The fused kernel's blocking: several query tiles with a partial last one, whole and partial key blocks, and
    value widths taken 32, 16 or 8 channels at a time with a partial last block, against the plain kernel."""
    rng = np.random.default_rng(nq + nk)
    b = 3
    q, k, v = (Tensor(rng.standard_normal((b, n, heads, d)).astype(np.float32)) for n in (nq, nk, nk))
    mask = (rng.random((b, nk)) > 0.2).astype(np.float32)
    mask[1] = 0.0
    bias = mask_bias(Tensor(mask), ms.float32).reshape(b, 1, 1, nk)
    pb = Tensor(rng.standard_normal((heads, nq, nk)).astype(np.float32))
    for with_bias in (True, False):
        ref = AttentionCore(ms.float32, ms.float32, 1e8, with_bias)(q, k, v, bias, pb).asnumpy()
        core = AttentionCore(ms.float32, ms.float32, 1e8, with_bias, native=True)
        core.set_train(False)
        assert core.fuses()
        np.testing.assert_allclose(core(q, k, v, bias, pb).asnumpy(), ref, rtol=1e-5, atol=1e-5)


def test_global_attention_native_equals_plain():
    rng = np.random.default_rng(2)
    m = Tensor(rng.standard_normal((6, 9, 8)).astype(np.float32))
    mask = (rng.random((6, 9)) > 0.3).astype(np.float32)
    mask[4] = 0.0
    results = []
    for flag in (False, True):
        ga = GlobalAttention(ModelContext(native_kernels=flag, zero_init=False, seed=5), 8, num_head=2, output_dim=8)
        assert (ga.native_softmax is not None) == flag
        ga.set_train(False)                    # inference: with native kernels, the summary kernel
        inference = ga(m, m, Tensor(mask)).asnumpy()
        ga.set_train(True)
        results.append(value_and_grads(ga, (m, m, Tensor(mask)), (0,)) + (inference,))
    np.testing.assert_allclose(results[1][2], results[0][2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[0][2], results[0][0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(results[1][1][0], results[0][1][0], rtol=1e-4, atol=1e-6)


class NativeOp(nn.Cell):
    def __init__(self, op, *consts):
        super().__init__()
        self.op, self.consts = op, consts

    def construct(self, *args):
        return self.op(*args, *self.consts)


@pytest.mark.parametrize("shape, perm", [((5, 7, 3), (1, 0, 2)), ((37, 21, 19), (2, 0, 1)), ((37, 21, 19), (2, 1, 0)),
                                         ((37, 21, 19), (1, 2, 0)), ((4, 33, 5, 17), (0, 2, 1, 3)),
                                         ((6, 1, 40, 18), (3, 1, 0, 2)), ((13, 29), (1, 0)), ((3, 4, 5), (0, 1, 2))])
def test_permute_kernel_equals_numpy(shape, perm):
    """Row copies (last axis kept), 16 x 16 tiles with ragged edges, merged and size-1 axes, the identity."""
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    out = NativeOp(native.permute(), Tensor(perm, ms.int32))(Tensor(x)).asnumpy()
    np.testing.assert_array_equal(out.reshape(x.transpose(perm).shape), x.transpose(perm))


def test_bias_and_gate_kernels_equal_numpy():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((45, 37)).astype(np.float32) * 5
    b = rng.standard_normal(37).astype(np.float32)
    np.testing.assert_allclose(NativeOp(native.bias_add())(Tensor(x), Tensor(b)).asnumpy(), x + b, rtol=1e-6)
    np.testing.assert_allclose(NativeOp(native.bias_add(True))(Tensor(x), Tensor(b)).asnumpy(),
                               np.maximum(x + b, 0), rtol=1e-6)
    x[0, :4] = [-100.0, 100.0, -1e30, 1e30]                    # saturated gates stay finite and exact
    with np.errstate(over="ignore"):                            # exp(1e30) = inf: sigmoid 0, as intended
        sig = 1.0 / (1.0 + np.exp(-(x.astype(np.float64) + b)))
    for period in (45, 15, 1):                                  # a per row, a per column of a [3, 15] grid, shared
        a = rng.standard_normal((period, 37)).astype(np.float32)
        out = NativeOp(native.sigmoid_gate())(Tensor(x), Tensor(b), Tensor(a)).asnumpy()
        np.testing.assert_allclose(out, sig * np.tile(a, (45 // period, 1)), rtol=2e-6, atol=1e-7)


def test_build_cache_is_atomic_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("MSF_NATIVE_CACHE", str(tmp_path))
    native.library.cache_clear()
    try:
        path, why = native.library()
        assert path is not None, why
        assert os.path.dirname(path) == str(tmp_path)
        assert sorted(os.listdir(tmp_path)) == [os.path.basename(path)]      # no temporary file left behind
        mtime = os.path.getmtime(path)
        native.library.cache_clear()
        assert native.library()[0] == path and os.path.getmtime(path) == mtime   # not rebuilt
    finally:
        native.library.cache_clear()


def test_setting_and_missing_compiler(tmp_path, monkeypatch, capsys):
    assert native.resolve(False) is False
    assert native.resolve("auto", "CPU") is True
    with pytest.raises(native.NativeKernelError, match="CPU kernels, the device is ASCEND"):
        native.resolve(True, "Ascend")
    assert native.resolve("auto", "GPU") is False
    with pytest.raises(ConfigError, match="native_kernels"):
        load_config("tiny", ["runtime.native_kernels=fast"])
    assert load_config("tiny", ["runtime.native_kernels=false"]).runtime.native_kernels is False
    monkeypatch.setenv("MSF_NATIVE_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", "no-such-compiler-msf")
    native.library.cache_clear()
    native._warn_once.cache_clear()
    try:
        with pytest.raises(native.NativeKernelError, match="no C.. compiler .no-such-compiler-msf."):
            native.resolve(True, "CPU")
        assert native.resolve("auto", "CPU") is False
        assert "native CPU kernels unavailable (no C++ compiler" in capsys.readouterr().err
        assert ModelContext.from_config(load_config("tiny")).native_kernels is False
    finally:
        native.library.cache_clear()
        native._warn_once.cache_clear()
