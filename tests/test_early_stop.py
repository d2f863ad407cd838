"""Early stop of recycling (``model.recycle_early_stop_tolerance``, AlphaFold 2.3's criterion) in the host-side
recycling loop: the measure itself, and the tiny preset with random weights on 2crb A's features: a huge tolerance
stops after the first recycle, 0 runs them all, and stopping after k recycles gives the outputs of a run with
num_recycle = k (the next iteration is the last)."""
import numpy as np
import pytest

from helpers import reference_path
from mindsponge_fold.model.runner import recycle_change

NUM_RECYCLE = 3


def test_recycle_change_is_the_rms_change_of_the_ca_distance_matrix():
    rng = np.random.default_rng(0)
    pos = rng.normal(size=(6, 37, 3)) * 5
    moved = pos + np.array([3.0, -1.0, 2.0])                   # a rigid move changes no distance
    assert recycle_change(pos, moved) == pytest.approx(1e-4)    # sqrt(0 + 1e-8), as AlphaFold
    scaled = pos * 1.5
    ca = pos[:, 1]
    d = np.linalg.norm(ca[:, None] - ca[None], axis=-1)
    assert recycle_change(pos, scaled) == pytest.approx(np.sqrt(np.mean((0.5 * d) ** 2) + 1e-8))
    zeros = np.zeros_like(pos)                                  # the first iteration is given zeros
    assert recycle_change(zeros, pos) == pytest.approx(np.sqrt(np.mean(d ** 2) + 1e-8))
    other = pos.copy()
    other[5] += 10.0                                            # a masked residue moves: no change counted
    mask = np.array([1, 1, 1, 1, 1, 0], np.float32)
    assert recycle_change(pos, other, mask) == pytest.approx(1e-4)
    assert recycle_change(pos, other) > 1.0
    other[:, 0] += 10.0                                         # only CA positions count
    assert recycle_change(pos, other, mask) == pytest.approx(1e-4)


@pytest.fixture(scope="module")
def runner_and_features():
    from mindsponge_fold.common.config import load_config
    from mindsponge_fold.data.rng import NumpyRNG
    from mindsponge_fold.data.transforms import process_features
    from mindsponge_fold.model.runner import ModelRunner
    from mindsponge_fold.predict.models import random_alphafold_params
    cfg = load_config("tiny", [f"model.num_recycle={NUM_RECYCLE}", "data.common.max_extra_msa=8",
                               "data.eval.max_msa_clusters=8", "data.common.use_templates=false",
                               "model.embeddings_and_evoformer.template.enabled=false"])   # a smaller graph
    with np.load(reference_path("raw_features.npz")) as f:
        raw = {k: f[k] for k in f.files}
    features = process_features(raw, cfg, "eval", NumpyRNG(0))
    runner = ModelRunner(cfg, None, device="CPU")
    runner.load_weights(random_alphafold_params(cfg, seed=5), weights_id="random")
    return runner, features


def test_tolerance_stops_recycling(runner_and_features):
    runner, features = runner_and_features

    def run_with(tolerance, num_recycle=NUM_RECYCLE):
        runner.cfg.model.recycle_early_stop_tolerance = tolerance     # read per run, not compiled into the graph
        seen = []
        out, timings = runner.run(features, num_recycle=num_recycle, on_iteration=lambda r, n: seen.append(n))
        return out, timings, seen

    everything, t_all, _ = run_with(0.0)
    assert int(everything["num_recycles"]) == NUM_RECYCLE and len(t_all["iterations_s"]) == NUM_RECYCLE + 1
    assert "recycle_changes" not in t_all                        # 0 = off: nothing measured
    assert {f"recycle_{r}/final_atom_positions" for r in range(NUM_RECYCLE)} <= set(everything)

    first, t_first, seen = run_with(1e6)                 # larger than any change: stop after one recycle
    assert int(first["num_recycles"]) == 1 and len(t_first["iterations_s"]) == 2
    assert seen == [1, 1] and "recycle_1/final_atom_positions" not in first
    assert len(t_first["recycle_changes"]) == 1 and t_first["recycle_changes"][0] > 1.0   # vs the zero start

    measured, t_measured, _ = run_with(1e-9)             # measures every change, never stops
    changes = t_measured["recycle_changes"]
    assert int(measured["num_recycles"]) == NUM_RECYCLE and len(changes) == NUM_RECYCLE
    assert changes[0] > changes[1] > 0
    np.testing.assert_array_equal(measured["structure_module/final_atom_positions"],
                                  everything["structure_module/final_atom_positions"])

    stopped, _, _ = run_with(changes[1])                 # recycle 1 changes no more than this: stop there
    assert int(stopped["num_recycles"]) == 2
    two, _, _ = run_with(0.0, num_recycle=2)
    for key in ("structure_module/final_atom_positions", "confidence/plddt", "distogram/logits"):
        np.testing.assert_array_equal(stopped[key], two[key], err_msg=key)
    assert not np.array_equal(stopped["structure_module/final_atom_positions"],
                              everything["structure_module/final_atom_positions"])
