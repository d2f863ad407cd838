"""The whole network against AlphaFold's reference run (fp32, graph mode), as the fixture README's "Suggested use":

3. iteration 0 from zero prev == outputs_recycle0.npz (a single iteration: "teacher_forced" tolerances) and
   recycle_0/* of the main run outputs_recycle<K>.npz (K = the fixture's recycle count);
4. the last iteration teacher-forced with the reference's recycle_{K-1}/* == every output of outputs_recycle<K>.npz,
   run through the ``run-features`` command exactly as a user would;
5. free-running recycling == outputs_recycle<K>.npz at the "free" level, compared by rms.
"""
import numpy as np
import pytest

from helpers import reference_path
from mindsponge_fold.cli import main
from parity import compare, main_run, network_outputs



@pytest.fixture(scope="module")
def runner():
    from mindsponge_fold.common.config import load_alphafold_config_file
    from mindsponge_fold.model.runner import ModelRunner
    cfg = load_alphafold_config_file(reference_path("config.json"))
    return ModelRunner(cfg, reference_path("params.npz"), bucket=False)


@pytest.fixture(scope="module")
def features():
    with np.load(reference_path("processed_features.npz")) as f:
        return {k: f[k] for k in f.files}


def load(name):
    with np.load(reference_path(name)) as f:
        return {k: f[k] for k in f.files}


def test_iteration_zero_matches_single_iteration_reference(runner, features):
    ref = load("outputs_recycle0.npz")
    ours, _ = runner.run(features, num_recycle=0)
    keys = network_outputs(np.load(reference_path("outputs_recycle0.npz")))
    assert set(keys) <= set(ours), sorted(set(keys) - set(ours))
    report = compare(ours, ref, keys)
    assert len(report) == len(keys) >= 25


def test_free_running_recycling_matches_at_the_free_level(runner, features):
    main_file, k = main_run()
    ref = load(main_file.name)
    ours, _ = runner.run(features, num_recycle=k)
    # iteration 0 itself is sharp; the recycled iterations inherit float32 noise through the binned prev_pos
    compare(ours, ref, [f"recycle_0/{n}" for n in ("single", "pair", "msa_first_row", "final_atom_positions")
                        if f"recycle_0/{n}" in ref])
    keys = [n for n in network_outputs(ref) if not n.startswith("recycle_")]
    compare(ours, ref, keys, use_max=False, free=True)


def test_teacher_forced_last_iteration_via_run_features(tmp_path):
    main_file, k = main_run()
    out = tmp_path / "out.npz"
    rc = main(["run-features", "--features", str(reference_path("processed_features.npz")),
               "--params", str(reference_path("params.npz")), "--af-config", str(reference_path("config.json")),
               "--num-recycle", str(k), "--teacher-forcing", str(main_file),
               "--ground-truth", str(reference_path("ground_truth.npz")), "--out", str(out)])
    assert rc == 0
    ours = load_npz(out)
    ref_file = np.load(main_file)
    ref = {k: ref_file[k] for k in ref_file.files}
    keys = network_outputs(ref_file)
    assert set(keys) <= set(ours), sorted(set(keys) - set(ours))
    final = [k for k in keys if not k.startswith("recycle_")]
    compare(ours, ref, final)
    # the losses of the last iteration, computed on our outputs, agree with the reference's
    losses = [k for k in ref if k.startswith("loss/")]
    assert set(losses) <= set(ours), sorted(set(losses) - set(ours))
    # every loss term, the PAE one included (its diagonal bins as AlphaFold's jitted model: tests/test_losses_parity.py)
    compare(ours, ref, losses)


def load_npz(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}
