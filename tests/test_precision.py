"""Mixed precision policy: the same weights run in float16 (LayerNorm, softmax, structure module, heads kept in
float32 per precision.fp32_cells) stay finite and close to float32; the fp32 families really run in float32."""
import mindspore as ms
import numpy as np

from helpers import reference_path
from mindsponge_fold.common.config import load_config
from mindsponge_fold.model.runner import ModelRunner


def randomized_runner(cfg, seed=7):
    runner = ModelRunner(cfg, None, bucket=False)
    rng = np.random.default_rng(seed)
    for p in runner.model.get_parameters():
        p.set_data(ms.Tensor((p.asnumpy() + 0.05 * rng.standard_normal(p.shape)).astype(np.float32)))
    return runner


def test_float16_forward_is_finite_and_close_to_float32():
    with np.load(reference_path("processed_features.npz")) as f:
        feats = {k: f[k][:1] for k in f.files}
    over = ["data.eval.max_templates=4", "model.embeddings_and_evoformer.template.max_templates=4"]
    out32, _ = randomized_runner(load_config("tiny", over)).run(feats, num_recycle=0)
    run16 = randomized_runner(load_config("tiny", over + ["precision.compute_dtype=float16"]))
    assert run16.model.evoformer.evoformer_iteration.pair_transition.transition1.dtype == ms.float16
    assert run16.model.structure_module.initial_projection.dtype == ms.float32     # fp32 family
    out16, _ = run16.run(feats, num_recycle=0)
    for k in ("representations/pair", "representations/single", "structure_module/final_atom_positions",
              "predicted_lddt/logits", "distogram/logits"):
        a, b = out16[k].astype(np.float64), out32[k].astype(np.float64)
        assert np.isfinite(a).all(), k
        rms = np.sqrt(((a - b) ** 2).mean()) / np.sqrt((b ** 2).mean())
        assert rms < 3e-2, (k, rms)


def test_float16_full_width_step_skips_a_forced_overflow_and_then_updates():
    """The train_initial network at full widths (c_m 256, c_z 128, all heads) in float16 with the dynamic loss scale,
    host recomputation, dropout on; depth, crop and MSA sizes cut to test speed. An absurd loss scale (2^40) overflows
    the float16 backward: the step is skipped (weights, Adam and EMA untouched) and the scale halves; the next step at
    scale 2^10 is finite and updates the weights."""
    from mindsponge_fold.data.rng import NumpyRNG
    from mindsponge_fold.data.transforms import run_pipeline, settings_from_config
    from mindsponge_fold.train.step import TrainStep, assign

    ms.set_context(mode=ms.GRAPH_MODE)
    cfg = load_config("train_initial", [
        "precision.compute_dtype=float16", "model.global_config.use_remat=host", "train.dropout=true",
        "train.max_recycle=0", "data.train.crop_size=24", "data.train.max_msa_clusters=8",
        "data.train.max_extra_msa=16", "data.train.max_templates=2",
        "model.embeddings_and_evoformer.evoformer_num_block=1",
        "model.embeddings_and_evoformer.extra_msa_stack_num_block=1",
        "model.embeddings_and_evoformer.template.template_pair_stack.num_block=1",
        "model.heads.structure_module.num_layer=2"])
    with np.load(reference_path("raw_features.npz")) as f:
        raw = {k: f[k] for k in f.files}
    features = run_pipeline(raw, settings_from_config(cfg, "train"), NumpyRNG([7, 1]))
    batch = {k: np.asarray(v)[None] for k, v in features.items()}
    trainer = TrainStep(cfg)
    assert trainer.ctx.remat == "host" and cfg.model.embeddings_and_evoformer.msa_channel == 256
    assert trainer.model.evoformer.evoformer_iteration.pair_transition.transition1.dtype == ms.float16

    assign(trainer.scaler.scale_value, 2.0 ** 40)
    before = {k: v.copy() for k, v in trainer.named_weights().items()}
    got = trainer.step(batch, 0)
    assert got["skipped"] and got["loss_scale"] == 2.0 ** 39 and np.isfinite(got["loss"])
    unchanged = trainer.named_weights()
    assert all(np.array_equal(v, unchanged[k]) for k, v in before.items())
    assert int(trainer.optimizer.global_step.asnumpy().item()) == 0

    assign(trainer.scaler.scale_value, 2.0 ** 10)
    got = trainer.step(batch, 1)
    assert not got["skipped"] and np.isfinite(got["loss"]) and np.isfinite(got["grad_norm"]) and got["grad_norm"] > 0
    after = trainer.named_weights()
    moved = {k for k, v in before.items() if not np.array_equal(v, after[k])}
    state = {k: p.asnumpy() for k, p in trainer.optimizer_state().items()}
    # the first update moves exactly the weights with a non-zero gradient (zero-initialised output layers hold the
    # layers before them at zero for now)
    assert moved == {k for k in before if np.any(state["opt.moment1." + k])} and len(moved) > 30
    assert int(state["opt.global_step"].item()) == 1
