"""Dropout (mindsponge_fold.model.dropout_masks + model.primitives.SharedDropout): the sites of the model with the
paper's rates and shared axes, masks constant along the shared axis, keep rate and 1/keep scaling, seeding per
(step, example, iteration), SharedDropout applying exactly the given mask (per block of a stack), and the inference
masks of ``eval_dropout`` (the training sites and rates less the structure module's, seeded per (seed,
iteration))."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn

from mindsponge_fold.common.config import load_config
from mindsponge_fold.model.alphafold import build_model
from mindsponge_fold.model.primitives import ModelContext, SharedDropout
from mindsponge_fold.model.dropout_masks import (activation_sizes, dropout_sites, inference_masks, mask_rng,
                                                 sample_masks, step_masks)

ms.set_device("CPU")


@pytest.fixture(scope="module")
def model():
    cfg = load_config("tiny")
    return build_model(cfg, ModelContext.from_config(cfg))


@pytest.fixture(scope="module")
def sites(model):
    return {s.key: s for s in dropout_sites(model)}


def test_sites_rates_and_shared_axes(sites):
    """The Evoformer's rates (Suppl. 1.11.6 / AlphaFold's config): row attention 0.15 shared over rows,
    triangle updates 0.25 (ending-node attention shared over columns), structure module 0.1 unshared; rate-0 modules
    (column attention, transitions, outer product mean) are no sites."""
    evo = {k.split("/", 1)[1]: s for k, s in sites.items() if k.startswith("evoformer_iteration/")}
    assert set(evo) == {"msa_row_attention_with_pair_bias", "triangle_multiplication_outgoing",
                        "triangle_multiplication_incoming", "triangle_attention_starting_node",
                        "triangle_attention_ending_node"}
    row = evo["msa_row_attention_with_pair_bias"]
    assert (row.rate, row.broadcast_dim, row.dims[:2]) == (0.15, 0, ("S", "N"))
    ending = evo["triangle_attention_ending_node"]
    assert (ending.rate, ending.broadcast_dim) == (0.25, 1)
    assert evo["triangle_multiplication_outgoing"].broadcast_dim == 0
    assert sites["extra_msa_stack/msa_row_attention_with_pair_bias"].dims[0] == "E"
    assert sites["template_pair_stack/triangle_attention_starting_node"].stack[0] == "T"
    sm = sites["structure_module/attention"]
    assert (sm.rate, sm.broadcast_dim, sm.dims[0]) == (0.1, None, "N")


def test_masks_shared_axis_rate_and_scaling(sites):
    sizes = {"S": 40, "E": 24, "N": 64, "T": 2}
    masks = sample_masks(list(sites.values()), sizes, mask_rng(0, 3, 1, 0))
    row = masks["evoformer_iteration/msa_row_attention_with_pair_bias"]
    assert row.shape == (2, 1, 64, 16)                             # 2 blocks, shared over the 40 MSA rows
    end = masks["evoformer_iteration/triangle_attention_ending_node"]
    assert end.shape == (2, 64, 1, 8)                              # shared over the columns
    assert masks["template_pair_stack/triangle_attention_starting_node"].shape[0] == 2 * 1   # templates x blocks
    for key, m in masks.items():
        keep = 1.0 - sites[key].rate
        assert set(np.unique(m)) <= {0.0, np.float32(1.0 / keep)}, key
    # keep rate and mean 1 over many draws
    big = sample_masks([sites["evoformer_iteration/triangle_multiplication_outgoing"]], {"N": 4096},
                       mask_rng(0, 0, 0, 0))["evoformer_iteration/triangle_multiplication_outgoing"]
    assert abs((big > 0).mean() - 0.75) < 0.01 and abs(big.mean() - 1.0) < 0.015


def test_masks_seeded_per_step_example_iteration(sites):
    item = {"aatype": np.zeros(30, np.int32), "msa_feat": np.zeros((12, 30, 49), np.float32),
            "extra_msa": np.zeros((20, 30), np.int32), "template_aatype": np.zeros((2, 30), np.int32)}
    assert activation_sizes(item, torsion_rows=True) == {"N": 30, "S": 14, "E": 20, "T": 2}
    site_list = list(sites.values())
    a = step_masks(site_list, item, True, seed=0, step=5, example=1, iteration=2)
    assert a["evoformer_iteration/msa_row_attention_with_pair_bias"].shape[2] == 30
    b = step_masks(site_list, item, True, seed=0, step=5, example=1, iteration=2)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    for other in ({"step": 6}, {"example": 0}, {"iteration": 1}, {"seed": 1}):
        kw = {"seed": 0, "step": 5, "example": 1, "iteration": 2, **other}
        c = step_masks(site_list, item, True, **kw)
        assert not np.array_equal(a["structure_module/attention"], c["structure_module/attention"]), other


class Apply(nn.Cell):
    def __init__(self, site):
        super().__init__()
        self.site = site

    def construct(self, x, drop, idx):
        return self.site(x, drop, idx)


def test_shared_dropout_applies_the_given_mask_per_block():
    ms.set_context(mode=ms.GRAPH_MODE)
    ctx = ModelContext()
    site = SharedDropout(ctx, 0.25, 0, key="s", dims=("S", "N", 3), stack=(2,))
    masks = sample_masks([site], {"S": 4, "N": 5}, mask_rng(1, 2, 3, 4))
    x = np.random.default_rng(0).standard_normal((4, 5, 3)).astype(np.float32)
    drop = ms.mutable({"s": Tensor(masks["s"])})
    for block in (0, 1):
        out = Apply(site)(Tensor(x), drop, Tensor(block, ms.int32)).asnumpy()
        np.testing.assert_array_equal(out, x * masks["s"][block])
        kept = out != 0
        assert np.all(kept == kept[:1])                             # the same positions dropped in every row
    assert np.array_equal(Apply(site)(Tensor(x), None, None).asnumpy(), x)    # no masks: identity
    assert SharedDropout(ModelContext(deterministic=True), 0.25).rate == 0.0


def test_inference_masks_have_the_training_sites_and_rates_less_the_structure_module(model, sites):
    """eval_dropout (AlphaFold's dropout_wrapper with is_training overridden): the same sites, rates and shared axes
    as training in the Evoformer, extra-MSA and template pair stacks; the structure module's dropout follows
    is_training only (folding.py), so it has no inference site. Masks: 0 or 1/keep, reproducible for a (seed,
    iteration), different for another seed or iteration."""
    inference = {s.key: s for s in dropout_sites(model, inference=True)}
    assert set(inference) == {k for k in sites if not k.startswith("structure_module/")}
    assert {k.split("/")[0] for k in inference} == {"evoformer_iteration", "extra_msa_stack", "template_pair_stack"}
    assert all(inference[k] is sites[k] for k in inference)        # the very same cells: same rates, same axes
    item = {"aatype": np.zeros(32, np.int32), "msa_feat": np.zeros((8, 32, 49), np.float32),
            "extra_msa": np.zeros((8, 32), np.int32), "template_aatype": np.zeros((2, 32), np.int32)}
    site_list = list(inference.values())
    a = inference_masks(site_list, item, True, seed=3, iteration=1)
    assert set(a) == set(inference)
    assert a["evoformer_iteration/msa_row_attention_with_pair_bias"].shape == (2, 1, 32, 16)   # S = 8 + 2 rows
    for key, m in a.items():
        assert m.shape == inference[key].mask_shape(activation_sizes(item, True)), key
        assert set(np.unique(m)) <= {0.0, np.float32(1.0 / (1.0 - inference[key].rate))}, key
    b = inference_masks(site_list, item, True, seed=3, iteration=1)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    for other in ({"seed": 4}, {"iteration": 0}):
        c = inference_masks(site_list, item, True, **{"seed": 3, "iteration": 1, **other})
        assert not np.array_equal(a["evoformer_iteration/triangle_multiplication_outgoing"],
                                  c["evoformer_iteration/triangle_multiplication_outgoing"]), other
    assert inference_masks([], item, True, seed=3, iteration=1) == {}
