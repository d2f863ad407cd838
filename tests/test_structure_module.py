"""Structure module (Suppl. Alg. 20-24) vs the AlphaFold reference fixture, teacher-forced: the reference's own
single/pair representations in, every structure_module/* output compared (graph mode, float32). Plus a training-mode
smoke test (dropout on, gradients reach every parameter)."""
import json
import time

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn

from helpers import reference_path
from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.common.config import load_config
from mindsponge_fold.model.primitives import ModelContext
from mindsponge_fold.model.structure import StructureModule
from mindsponge_fold.model.params import load_submodule_params, official_name

ms.set_device("CPU")

# our output key -> fixture array
OUTPUT_TO_FIXTURE = {
    "act": "representations/structure_module",
    "traj": "structure_module/traj",
    "final_affines": "structure_module/final_affines",
    "sidechains/frames": "structure_module/sidechains/frames",
    "sidechains/atom_pos": "structure_module/sidechains/atom_pos",
    "sidechains/angles_sin_cos": "structure_module/sidechains/angles_sin_cos",
    "sidechains/unnormalized_angles_sin_cos": "structure_module/sidechains/unnormalized_angles_sin_cos",
    "final_atom14_positions": "structure_module/final_atom14_positions",
    "final_atom14_mask": "structure_module/final_atom14_mask",
    "final_atom_positions": "structure_module/final_atom_positions",
    "final_atom_mask": "structure_module/final_atom_mask",
}
BATCH_KEYS = ("aatype", "seq_mask", "atom14_atom_exists", "atom37_atom_exists")


@pytest.fixture(autouse=True)
def graph_mode():
    ms.set_context(mode=ms.GRAPH_MODE)


@pytest.fixture(scope="module")
def reference_module():
    ms.set_context(mode=ms.GRAPH_MODE)
    cfg = load_config("model_1_ptm")
    sm = StructureModule(cfg.model.heads.structure_module, ModelContext(), 384, 128)
    used = load_submodule_params(sm, np.load(reference_path("params.npz")), "structure_module.")
    assert len(used) == 45
    sm.set_train(False)
    return sm


def relative_errors(ours, ref):
    d = np.abs(ours.astype(np.float64) - ref)
    max_rel = d.max() / max(np.abs(ref).max(), 1e-30)
    rms_rel = np.sqrt((d ** 2).mean()) / max(np.sqrt((ref ** 2).mean()), 1e-30)
    return d.max(), max_rel, rms_rel


@pytest.mark.parametrize("recycle", [1, 0])
def test_structure_module_matches_reference(reference_module, recycle):
    ref = np.load(reference_path(f"outputs_recycle{recycle}.npz"))
    feats = np.load(reference_path("processed_features.npz"))
    tolerances = json.load(open(reference_path("suggested_tolerances.json")))
    batch = ms.mutable({k: Tensor(feats[k][recycle]) for k in BATCH_KEYS})   # mutable: no recompile per batch
    out = reference_module(Tensor(ref["representations/single"]), Tensor(ref["representations/pair"]), batch)
    assert set(out) == set(OUTPUT_TO_FIXTURE)
    failures = []
    for key, fixture_key in OUTPUT_TO_FIXTURE.items():
        ours, theirs = out[key].asnumpy(), ref[fixture_key]
        assert ours.shape == theirs.shape, (key, ours.shape, theirs.shape)
        tol = tolerances["outputs:" + fixture_key]
        max_abs, max_rel, rms_rel = relative_errors(ours, theirs)
        print(f"recycle{recycle} {fixture_key}: max_abs {max_abs:.2e} max_rel {max_rel:.2e} "
              f"(tol {tol['max_abs_over_max_ref']:.1e}) rms_rel {rms_rel:.2e} (tol {tol['rms_over_rms_ref']:.1e})")
        if max_rel > tol["max_abs_over_max_ref"] or rms_rel > tol["rms_over_rms_ref"]:
            failures.append((fixture_key, max_rel, rms_rel))
    assert not failures, failures


def test_atom37_map_from_residue_types_equals_pipeline_map():
    """atom14_to_atom37 derives the index map from aatype; it must be the pipeline's residx_atom37_to_atom14
    wherever the atom exists."""
    feats = np.load(reference_path("processed_features.npz"))
    aatype, exists = feats["aatype"][0], feats["atom37_atom_exists"][0]
    table = rc.restype_atom37_to_atom14[aatype]
    assert exists.sum() > 0
    np.testing.assert_array_equal(table * exists, feats["residx_atom37_to_atom14"][0] * exists)


def _tiny_batch(n, rng):
    aatype = rng.integers(0, 20, n).astype(np.int32)
    seq_mask = np.ones(n, np.float32)
    seq_mask[-2:] = 0.0
    return {"aatype": Tensor(aatype), "seq_mask": Tensor(seq_mask),
            "atom14_atom_exists": Tensor(rc.restype_atom14_mask[aatype].astype(np.float32)),
            "atom37_atom_exists": Tensor(rc.restype_atom37_mask[aatype].astype(np.float32))}


class _Loss(nn.Cell):
    def __init__(self, sm):
        super().__init__()
        self.sm = sm

    def construct(self, single, pair, batch, target, drop=None):
        out = self.sm(single, pair, batch, drop)
        pos = out["sidechains/atom_pos"]
        return ((pos - target) ** 2).mean() + (out["act"] ** 2).mean() + (out["traj"] ** 2).mean()


def test_training_mode_gradients_reach_every_parameter():
    cfg = load_config("tiny")
    c_s = cfg.model.embeddings_and_evoformer.seq_channel
    c_z = cfg.model.embeddings_and_evoformer.pair_channel
    sm = StructureModule(cfg.model.heads.structure_module, ModelContext(zero_init=False, seed=1), c_s, c_z)
    rng = np.random.default_rng(0)
    n = 10
    single = Tensor(rng.standard_normal((n, c_s)).astype(np.float32))
    pair = Tensor(rng.standard_normal((n, n, c_z)).astype(np.float32))
    batch = _tiny_batch(n, rng)
    target = Tensor(rng.standard_normal((8, n, 14, 3)).astype(np.float32))

    sm.set_train(True)
    grad_fn = ms.value_and_grad(_Loss(sm), None, sm.trainable_params())
    batch = ms.mutable(batch)
    t0 = time.time()
    loss, grads = grad_fn(single, pair, batch, target)
    print(f"training-mode grad graph: compile + first step {time.time() - t0:.1f}s")
    assert np.isfinite(loss.asnumpy())
    names = [p.name for p in sm.trainable_params()]
    assert len(names) == 45
    for name, grad in zip(names, grads):
        grad = grad.asnumpy()
        assert np.all(np.isfinite(grad)), name
        assert np.abs(grad).max() > 0, f"zero gradient for {name}"
    # dropout (rate 0.1, unshared, after the attention and after the transition of every layer) from given masks:
    # the loss changes, and the same masks give the same loss again
    from mindsponge_fold.model.dropout_masks import dropout_sites, mask_rng, sample_masks
    sites = dropout_sites(sm)
    assert [s.key for s in sites] == ["structure_module/attention", "structure_module/transition"]
    masks = sample_masks(sites, {"N": n}, mask_rng(0, 0, 0, 0))
    assert masks["structure_module/attention"].shape == (8, n, cfg.model.heads.structure_module.num_channel)
    drop = ms.mutable({k: Tensor(v) for k, v in masks.items()})
    dropped = [float(grad_fn(single, pair, batch, target, drop)[0].asnumpy()) for _ in range(2)]
    assert dropped[0] == dropped[1] and abs(dropped[0] - float(loss.asnumpy())) > 1e-6


def test_parameter_names_and_shapes_match_official_manifest():
    manifest = json.load(open(reference_path("manifest_model_1_ptm.json")))["params"]
    official = {k: tuple(v["shape"]) for k, v in manifest.items() if "/structure_module/" in k}
    cfg = load_config("model_1_ptm")
    sm = StructureModule(cfg.model.heads.structure_module, ModelContext(), 384, 128)
    ours = {official_name("structure_module." + p.name): tuple(p.shape) for p in sm.get_parameters()}
    assert ours == official


def test_layer_loop_equals_unrolled_layers_and_reexecutes(reference_module):
    """Inference runs the 8 shared-weight layers in a graph while loop; the unrolled layers (training's form) give the
    same outputs, and a second input through the compiled loop gives fresh per-layer outputs (none stale)."""
    cfg = load_config("model_1_ptm")
    unrolled = StructureModule(cfg.model.heads.structure_module, ModelContext(), 384, 128)
    load_submodule_params(unrolled, np.load(reference_path("params.npz")), "structure_module.")
    unrolled.unroll = True
    unrolled.set_train(False)
    assert not reference_module.unroll
    feats = np.load(reference_path("processed_features.npz"))
    outs = []
    for recycle in (0, 1):
        ref = np.load(reference_path(f"outputs_recycle{recycle}.npz"))
        args = (Tensor(ref["representations/single"]), Tensor(ref["representations/pair"]))
        batch = ms.mutable({k: Tensor(feats[k][recycle]) for k in BATCH_KEYS})
        loop, plain = reference_module(*args, batch), unrolled(*args, batch)
        for key in OUTPUT_TO_FIXTURE:
            np.testing.assert_allclose(loop[key].asnumpy(), plain[key].asnumpy(), rtol=1e-5, atol=1e-5, err_msg=key)
        outs.append({k: v.asnumpy() for k, v in loop.items()})
    moving = [k for k in OUTPUT_TO_FIXTURE if not k.endswith("mask")]
    stale = [k for k in moving if np.array_equal(outs[0][k], outs[1][k])]
    assert not stale, stale
