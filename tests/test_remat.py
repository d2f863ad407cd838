"""Recomputation in training (Suppl. 1.11.8) with dropout on: the host-driven recomputation
(mindsponge_fold.train.remat, the CPU default) gives the gradient of the plain graph, masks replayed exactly
(``Cell.recompute`` inside the graph, the Ascend/GPU path, is checked block by block in test_evoformer); loss scale
1 vs 1024 give equal gradients; a few steps with dropout on are finite, move the weights and repeat exactly.

The tiny preset keeps every module (templates with torsion rows, extra-MSA stack, all heads) at test speed."""
import mindspore as ms
import numpy as np
import pytest
from helpers import reference_path

from mindsponge_fold.common.config import load_config
from mindsponge_fold.data.rng import NumpyRNG
from mindsponge_fold.data.transforms import run_pipeline, settings_from_config
from mindsponge_fold.train.step import TrainStep, assign

ms.set_device("CPU")
SETTINGS = ["train.dropout=true", "train.max_recycle=1", "train.grad_clip_norm=0", "train.loss_scale.type=fixed",
            "train.loss_scale.init_scale=1.0", "data.train.crop_size=48", "model.heads.structure_module.num_layer=2",
            "model.heads.structure_module.compute_in_graph_metrics=false"]


def config(remat):
    return load_config("tiny", SETTINGS + [f"model.global_config.use_remat={remat}"])


@pytest.fixture(scope="module")
def batch():
    """One training batch (B=1, R=2) of 2crb A with templates, from the training feature pipeline."""
    ms.set_context(mode=ms.GRAPH_MODE)
    with np.load(reference_path("raw_features.npz")) as f:
        raw = {k: f[k] for k in f.files}
    features = run_pipeline(raw, settings_from_config(config("false"), "train"), NumpyRNG([7, 1]))
    assert features["template_aatype"].shape[:2] == (2, 2)
    return {k: np.asarray(v)[None] for k, v in features.items()}


@pytest.fixture(scope="module")
def trainers():
    ms.set_context(mode=ms.GRAPH_MODE)
    return {mode: TrainStep(config(mode)) for mode in ("false", "host")}


def gradients(trainer, batch, step=3, recycles=0):
    loss, terms, norm, grads = trainer.example_gradients(batch, 0, recycles, step)
    return float(loss.asnumpy()), [g.asnumpy() for g in grads]


def assert_same(a, b, params, rtol=2e-5):
    scale = max(float(np.abs(g).max()) for g in a)
    for p, x, y in zip(params, a, b):
        np.testing.assert_allclose(y, x, rtol=rtol, atol=rtol * scale, err_msg=p.name)


def test_recomputation_gives_the_plain_gradient_with_dropout(trainers, batch):
    plain, host = trainers["false"], trainers["host"]
    assert (plain.ctx.remat, host.ctx.remat) == ("none", "host")
    assert type(host.grad_step).__name__ == "HostRematGrad"
    assert all(np.array_equal(a, b) for a, b in zip(plain.named_weights().values(),   # the same initial weights
                                                     host.named_weights().values()))
    masks = plain.dropout_masks(batch, 3, 0, 0)
    assert masks is not None and len(masks) >= 10               # Evoformer, extra-MSA, template and SM sites
    loss, ref = gradients(plain, batch)
    got_loss, got = gradients(host, batch)
    assert got_loss == pytest.approx(loss, rel=1e-5)
    assert_same(ref, got, plain.params)
    # the masks matter: another step's masks give another gradient
    _, other = gradients(plain, batch, step=4)
    assert max(float(np.abs(a - b).max()) for a, b in zip(ref, other)) > 1e-3 * max(float(np.abs(g).max())
                                                                                      for g in ref)


def test_loss_scale_is_divided_out(trainers, batch):
    trainer = trainers["host"]
    got = {}
    for scale in (1.0, 1024.0):
        assign(trainer.scaler.scale_value, scale)
        got[scale] = gradients(trainer, batch)
    assign(trainer.scaler.scale_value, 1.0)
    assert got[1.0][0] == pytest.approx(got[1024.0][0], rel=1e-6)
    assert_same(got[1.0][1], got[1024.0][1], trainer.params, rtol=1e-6)


def _state(trainer) -> dict:
    out = {("w", i): p.asnumpy().copy() for i, p in enumerate(trainer.params)}
    out.update({("ema", i): p.asnumpy().copy() for i, p in enumerate(trainer.ema)})
    out.update({("opt", k): p.asnumpy().copy() for k, p in trainer.optimizer_state().items()})
    return out


def _restore(trainer, saved: dict) -> None:
    opt = trainer.optimizer_state()
    for (kind, key), value in saved.items():
        target = {"w": trainer.params, "ema": trainer.ema}.get(kind)
        assign(target[key] if target is not None else opt[key], value)


def test_steps_with_dropout_move_weights_and_repeat_exactly(trainers, batch):
    """Three optimisation steps with dropout on; the same steps from the same state again give the same losses and
    weights bit for bit (the masks are a function of (seed, step, example, iteration), not of a kernel's state)."""
    trainer = trainers["host"]
    start = _state(trainer)
    runs = []
    for _ in range(2):
        _restore(trainer, start)
        out = [trainer.step(batch, s) for s in range(3)]
        assert all(np.isfinite(o["loss"]) and not o["skipped"] for o in out)
        runs.append(([o["loss/total"] for o in out], _state(trainer)))
    moved = [k for k in start if k[0] == "w" and not np.array_equal(start[k], runs[0][1][k])]
    assert len(moved) > 0.5 * len(trainer.params)
    assert runs[0][0] == runs[1][0]
    assert all(np.array_equal(runs[0][1][k], runs[1][1][k]) for k in start)
