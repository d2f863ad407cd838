"""Prediction heads vs the AlphaFold reference fixture: the reference's representations in, logits and bin
edges/breaks out (graph mode, float32). masked_msa: the fixture stores only MSA rows 0-7 of the representation,
so those rows of the logits are compared here (all 124 rows in the end-to-end test)."""
import json

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn

from helpers import reference_path
from mindsponge_fold.common.config import load_config
from mindsponge_fold.model.heads import (DistogramHead, ExperimentallyResolvedHead, MaskedMsaHead,
                                         PredictedAlignedErrorHead, PredictedLDDTHead)
from mindsponge_fold.model.primitives import ModelContext
from mindsponge_fold.model.params import load_submodule_params, official_name

ms.set_device("CPU")


class Heads(nn.Cell):
    """The five heads under their AlphaFoldIteration attribute names."""

    def __init__(self, cfg, ctx):
        super().__init__()
        heads, evo = cfg.model.heads, cfg.model.embeddings_and_evoformer
        self.distogram_head = DistogramHead(heads.distogram, ctx, evo.pair_channel)
        self.masked_msa_head = MaskedMsaHead(heads.masked_msa, ctx, evo.msa_channel)
        self.predicted_lddt_head = PredictedLDDTHead(heads.predicted_lddt, ctx, evo.seq_channel)
        self.predicted_aligned_error_head = PredictedAlignedErrorHead(heads.predicted_aligned_error, ctx,
                                                                      evo.pair_channel)
        self.experimentally_resolved_head = ExperimentallyResolvedHead(heads.experimentally_resolved, ctx,
                                                                       evo.seq_channel)

    def construct(self, single, pair, msa, structure_module_act):
        dist = self.distogram_head(pair)
        pae = self.predicted_aligned_error_head(pair)
        return {
            "distogram/logits": dist["logits"],
            "distogram/bin_edges": dist["bin_edges"],
            "masked_msa/logits": self.masked_msa_head(msa)["logits"],
            "predicted_lddt/logits": self.predicted_lddt_head(structure_module_act)["logits"],
            "predicted_aligned_error/logits": pae["logits"],
            "predicted_aligned_error/breaks": pae["breaks"],
            "experimentally_resolved/logits": self.experimentally_resolved_head(single)["logits"],
        }


@pytest.fixture(autouse=True)
def graph_mode():
    ms.set_context(mode=ms.GRAPH_MODE)


@pytest.mark.parametrize("recycle", [1, 0])
def test_heads_match_reference(recycle):
    cfg = load_config("model_1_ptm")
    heads = Heads(cfg, ModelContext())
    used = load_submodule_params(heads, np.load(reference_path("params.npz")), "")
    assert len(used) == 16
    heads.set_train(False)
    ref = np.load(reference_path(f"outputs_recycle{recycle}.npz"))
    tolerances = json.load(open(reference_path("suggested_tolerances.json")))
    msa_rows = ref["representations/msa_rows0to7"]
    out = heads(*(Tensor(ref[k]) for k in ("representations/single", "representations/pair")),
                Tensor(msa_rows), Tensor(ref["representations/structure_module"]))
    failures = []
    for key, value in out.items():
        ours = value.asnumpy()
        theirs = ref[key][:msa_rows.shape[0]] if key == "masked_msa/logits" else ref[key]
        assert ours.shape == theirs.shape, (key, ours.shape, theirs.shape)
        d = np.abs(ours.astype(np.float64) - theirs)
        max_rel = d.max() / max(np.abs(theirs).max(), 1e-30)
        rms_rel = np.sqrt((d ** 2).mean()) / max(np.sqrt((theirs ** 2).mean()), 1e-30)
        tol = tolerances["outputs:" + key]
        print(f"recycle{recycle} {key}: max_abs {d.max():.2e} max_rel {max_rel:.2e} "
              f"(tol {tol['max_abs_over_max_ref']:.1e}) rms_rel {rms_rel:.2e} (tol {tol['rms_over_rms_ref']:.1e})")
        if max_rel > tol["max_abs_over_max_ref"] or rms_rel > tol["rms_over_rms_ref"]:
            failures.append((key, max_rel, rms_rel))
    assert not failures, failures
    # the distogram is symmetric by construction
    dist = out["distogram/logits"].asnumpy()
    np.testing.assert_array_equal(dist, dist.transpose(1, 0, 2))


def test_parameter_names_and_shapes_match_official_manifest():
    manifest = json.load(open(reference_path("manifest_model_1_ptm.json")))["params"]
    official = {k: tuple(v["shape"]) for k, v in manifest.items() if "_head/" in k}
    heads = Heads(load_config("model_1_ptm"), ModelContext())
    assert {official_name(p.name): tuple(p.shape) for p in heads.get_parameters()} == official
