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
