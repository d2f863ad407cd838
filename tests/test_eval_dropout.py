"""Dropout at inference (``model.global_config.eval_dropout``, AlphaFold 2.3 / ColabFold's ``use_dropout``) in the
host-side recycling loop: the tiny preset with random weights on the reference fixture's features, one recycle.
Off: no masks reach the graph and two runs are identical. On: every iteration gets fresh masks of the inference
sites (the training rates, :mod:`test_dropout`), the outputs differ from the dropout-free ones, repeat exactly for
the same seed and differ for another seed."""
import numpy as np
import pytest

from helpers import reference_path

COMPARED = ("structure_module/final_atom_positions", "representations/pair", "confidence/plddt",
            "recycle_0/final_atom_positions")


@pytest.fixture(scope="module")
def runners_and_features():
    from mindsponge_fold.common.config import load_config
    from mindsponge_fold.data.rng import NumpyRNG
    from mindsponge_fold.data.transforms import process_features
    from mindsponge_fold.model.runner import ModelRunner
    from mindsponge_fold.predict.models import random_alphafold_params
    small = ["model.num_recycle=1", "data.common.max_extra_msa=8", "data.eval.max_msa_clusters=8",
             "data.common.use_templates=false", "model.embeddings_and_evoformer.template.enabled=false"]
    cfg_off = load_config("tiny", small)
    cfg_on = load_config("tiny", small + ["model.global_config.eval_dropout=true"])
    with np.load(reference_path("raw_features.npz")) as f:
        raw = {k: f[k] for k in f.files}
    features = process_features(raw, cfg_off, "eval", NumpyRNG(0))
    weights = random_alphafold_params(cfg_off, seed=5)
    runners = {}
    for name, cfg in (("off", cfg_off), ("on", cfg_on)):
        runners[name] = ModelRunner(cfg, None, device="CPU")
        runners[name].load_weights(weights, weights_id="random")
    return runners, features


def _same(a: dict, b: dict) -> bool:
    return all(np.array_equal(a[k], b[k]) for k in COMPARED)


def test_without_eval_dropout_no_masks_and_identical_runs(runners_and_features):
    runners, features = runners_and_features
    off = runners["off"]
    assert off.dropout_sites == []
    passed = []
    iterate = off.iterate
    off.iterate = lambda inputs, prev, drop=None: passed.append(drop) or iterate(inputs, prev, drop)
    try:
        first, timings = off.run(features, seed=0)
        second, _ = off.run(features, seed=7)                      # the seed is unused without eval_dropout
    finally:
        del off.iterate
    assert passed == [{}] * 4 and "dropout_seed" not in timings
    assert _same(first, second)


def test_eval_dropout_samples_per_seed_and_iteration(runners_and_features):
    runners, features = runners_and_features
    on = runners["on"]
    keys = {s.key for s in on.dropout_sites}
    assert keys and not any(k.startswith("structure_module/") for k in keys)
    assert any(k.startswith("extra_msa_stack/") for k in keys) and any(k.startswith("evoformer_iteration/")
                                                                       for k in keys)
    passed = []
    iterate = on.iterate
    on.iterate = lambda inputs, prev, drop=None: passed.append({k: v.asnumpy() for k, v in drop.items()}) \
        or iterate(inputs, prev, drop)
    try:
        a, timings = on.run(features, seed=0)
        b, _ = on.run(features, seed=0)
        c, timings_c = on.run(features, seed=1)
    finally:
        del on.iterate
    assert timings["dropout_seed"] == 0 and timings_c["dropout_seed"] == 1
    assert len(passed) == 6 and all(set(p) == keys for p in passed)
    key = "evoformer_iteration/triangle_multiplication_outgoing"
    n_pad = on.padded_length(int(features["aatype"].shape[-1]))
    assert passed[0][key].shape[1:3] == (1, n_pad)                  # padded residues, shared over rows
    assert not np.array_equal(passed[0][key], passed[1][key])       # fresh masks in every recycling iteration
    assert all(np.array_equal(passed[i][k], passed[i + 2][k]) for i in (0, 1) for k in keys)   # same seed
    assert not np.array_equal(passed[0][key], passed[4][key])       # another seed
    off, _ = runners["off"].run(features)
    assert _same(a, b)                                               # reproducible for a seed
    for k in COMPARED:
        assert not np.array_equal(a[k], c[k]), k                     # another seed, another sample
        assert not np.array_equal(a[k], off[k]), k                   # dropout changes the prediction
    assert np.all(np.isfinite(a["structure_module/final_atom_positions"]))
