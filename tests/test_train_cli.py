"""`mindsponge-fold train` end to end (subprocess: its memory is freed afterwards) and the launcher scripts' argument
validation.

The learning run (`--config tiny_learn`, whose header lists its settings) overfits the tiny network to one real chain,
1psm A (38 residues, NMR, ../shared/data): real features and labels through the MindRecord loader, one fixed input
per step, the whole chain. The periodic validation scores the EMA weights' prediction of the whole chain
(lDDT-Calpha vs the native); the loss must fall and lDDT-Calpha pass 0.5 in the first 1000 of tiny_learn's 2000 steps
(the whole curve, 0.70 at 2000 and 0.95 at 5000: benchmarks/results/learn_1psm_tiny_learn.json).
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from train_helpers import make_records

from mindsponge_fold.common.config import load_config
from mindsponge_fold.model import params as P
from mindsponge_fold.model.alphafold import build_model
from mindsponge_fold.train import curves

REPO = Path(__file__).resolve().parents[1]
LEARN_STEPS = 1000   # half of tiny_learn's train.num_steps (CI time). Measured: validation lDDT-Calpha 0.49 / 0.57 /
#                      0.62 / 0.70 at steps 500 / 1000 / 1500 / 2000 (deterministic).


def run_cli(args, cwd, timeout=900):
    env = {**os.environ, "GLOG_v": "3", "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "mindsponge_fold.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def learning_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("learn")
    data = make_records(tmp, names=("1psm_A",))
    out = tmp / "run"
    args = ["train", "--config", "tiny_learn", "--data", str(data), "--val-data", str(data), "--out", str(out),
            "--workers", "1", "--steps", str(LEARN_STEPS)]
    proc = run_cli(args, tmp, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {"out": out, "proc": proc}


def test_overfits_one_chain(learning_run):
    records = curves.read_log(learning_run["out"] / "train_log.jsonl")
    train = [r for r in records if r["kind"] == "train"]
    val = [r for r in records if r["kind"] == "val"]
    assert [r["step"] for r in train] == list(range(1, LEARN_STEPS + 1))
    loss = np.array([r["loss/total"] for r in train if not r["skipped"]])
    k = len(loss) // 5
    assert loss[-k:].mean() < loss[:k].mean() - 0.3, (loss[:k].mean(), loss[-k:].mean())
    assert [r["step"] for r in val] == [500, 1000]
    assert all(0.0 <= r["val/lddt_ca"] <= 1.0 and set(r["val/per_sample"]) == {"1psm_A"} for r in val)


def test_reaches_lddt_05_and_improves(learning_run):
    val = [r for r in curves.read_log(learning_run["out"] / "train_log.jsonl") if r["kind"] == "val"]
    scores = [r["val/lddt_ca"] for r in val]
    assert scores[-1] > 0.5 and scores[-1] > scores[0] + 0.03, scores


def test_log_curve_and_stdout(learning_run):
    out = learning_run["out"]
    first = curves.read_log(out / "train_log.jsonl")[0]
    for key in ("kind", "step", "epoch", "loss", "loss/total", "loss/distogram", "loss/masked_msa",
                "loss/structure_module", "loss/structure_module/fape", "grad_norm", "lr", "loss_scale", "num_recycle",
                "skipped", "step_time_s", "samples_per_s", "names"):
        assert key in first, key
    assert first["names"] == ["1psm_A"]
    import matplotlib.pyplot as plt
    assert plt.imread(out / "training_curve.png").shape[0] > 200
    stdout = learning_run["proc"].stdout
    assert f"step 20/{LEARN_STEPS} loss" in stdout and "validation lDDT-Ca" in stdout
    assert f"done: {LEARN_STEPS} steps" in stdout
    assert "step" in learning_run["proc"].stderr                       # the progress bar


def test_checkpoint_layout_loads_as_weights(learning_run):
    out = learning_run["out"]
    ckpts = sorted((out / "checkpoints").iterdir())
    cfg = load_config(str(out / "config.yaml"))
    every = cfg.train.checkpoint_every
    assert [p.name for p in ckpts] == [f"step_{s:08d}.ckpt" for s in range(every, LEARN_STEPS + 1, every)]
    assert cfg.name == "tiny_learn" and cfg.train.num_steps == LEARN_STEPS
    model = build_model(cfg)
    P.load_weights(model, ckpts[-1])                                   # what run-features / predict --params do
    raw = P.read_checkpoint(ckpts[-1])
    for n, p in P.model_parameters(model).items():
        assert np.array_equal(p.asnumpy(), raw[n]), n
    P.load_weights(model, ckpts[-1], use_ema=True)
    n = next(iter(P.model_parameters(model)))
    assert np.array_equal(P.model_parameters(model)[n].asnumpy(), raw["ema." + n])
    assert not np.array_equal(raw["ema." + n], raw[n])


def test_train_cli_rejects_bad_arguments(tmp_path):
    proc = run_cli(["train", "--config", "tiny_train", "--data", "nowhere.mindrecord", "--steps", "0"], tmp_path)
    assert proc.returncode == 2 and "--steps must be >= 1" in proc.stderr
    proc = run_cli(["train", "--config", "tiny_train", "--data", "x", "--resume", "missing.ckpt"], tmp_path)
    assert proc.returncode == 2 and "missing.ckpt" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    # bare --resume with no checkpoint in --out (a typo): an error, not a silent restart from step 0
    proc = run_cli(["train", "--config", "tiny_train", "--data", "x", "--out", "typo", "--resume"], tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "no checkpoint to resume from in typo/checkpoints" in proc.stderr and "--resume auto" in proc.stderr
    assert not (tmp_path / "typo").exists()
    proc = run_cli(["train", "--help"], tmp_path)
    assert proc.returncode == 0 and "143 stopped by SIGTERM" in " ".join(proc.stdout.split())


# -- launchers -----------------------------------------------------------------------------------------------------
@pytest.fixture
def fake_msrun(tmp_path):
    """An msrun stand-in that records its arguments: a launcher that refuses its arguments must never start it."""
    marker = tmp_path / "msrun_called"
    script = tmp_path / "msrun"
    script.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > {marker}\n')
    script.chmod(0o755)
    return script, marker


BAD_LAUNCHES = [
    ("train_cpu.sh", [], "no training arguments"),
    ("train_cpu.sh", ["--", "--config", "tiny_train"], "need --data"),
    ("train_cpu.sh", ["-n", "0", "--", "--data", "d"], "--workers must be a positive integer"),
    ("train_cpu.sh", ["--workers", "two", "--", "--data", "d"], "--workers must be a positive integer"),
    ("train_cpu.sh", ["--master-port", "80", "--", "--data", "d"], "--master-port must be 1024..65535"),
    ("train_cpu.sh", ["--nodes", "2", "--", "--data", "d"], "--master-addr is required"),
    ("train_cpu.sh", ["--nodes", "2", "--node-rank", "2", "--master-addr", "h", "--", "--data", "d"], "--node-rank"),
    ("train_cpu.sh", ["--bogus", "--", "--data", "d"], "unknown option '--bogus'"),
    ("train_cpu.sh", ["--", "--data", "d", "--device", "GPU"], "do not pass --device"),
    ("train_cpu.sh", ["--timeout"], "--timeout needs a value"),
    ("train_ascend.sh", ["-n", "x", "--", "--data", "d"], "--workers must be a positive integer"),
    ("train_gpu.sh", ["--", "--config", "c"], "need --data"),
    ("train_ascend_ranktable.sh", ["--", "--data", "d"], "--rank-table FILE is required"),
    ("train_ascend_ranktable.sh", ["--rank-table", "none.json", "--", "--data", "d"], "does not exist"),
]


@pytest.mark.parametrize("args,env,message", [
    (["--steps", "ten"], {}, "--steps must be a positive integer"),
    (["--bogus"], {}, "unknown argument '--bogus'"),
    (["-o"], {}, "-o needs a value"),
    ([], {"MSF_SHARED": "/nonexistent"}, "1psm inputs not found under /nonexistent"),
])
def test_learn_demo_rejects_bad_arguments(args, env, message, tmp_path):
    proc = subprocess.run(["bash", str(REPO / "scripts" / "learn_demo.sh"), "-o", str(tmp_path / "o"), *args],
                          cwd=tmp_path, capture_output=True, text=True, env={**os.environ, **env}, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr, (proc.returncode, proc.stderr)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("script,args,message", BAD_LAUNCHES)
def test_launcher_rejects_bad_arguments(script, args, message, fake_msrun, tmp_path):
    msrun, marker = fake_msrun
    env = {k: v for k, v in os.environ.items() if k != "RANK_TABLE_FILE"}
    proc = subprocess.run(["bash", str(REPO / "scripts" / script), *args], cwd=tmp_path, capture_output=True,
                          text=True, env={**env, "MSRUN": str(msrun)}, timeout=60)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert message in proc.stderr and "usage: scripts/" + script in proc.stderr
    assert not marker.exists()


def test_launcher_passes_arguments_to_msrun(fake_msrun, tmp_path):
    msrun, marker = fake_msrun
    proc = subprocess.run(["bash", str(REPO / "scripts" / "train_cpu.sh"), "-n", "3", "--master-port", "9001", "--",
                           "--config", "tiny_train", "--data", "d.mindrecord"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "MSRUN": str(msrun)}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    called = marker.read_text().splitlines()
    for expected in ("--worker_num=3", "--local_worker_num=3", "--master_addr=127.0.0.1", "--master_port=9001",
                     "--join=True"):
        assert expected in called
    assert called[-8:] == [str(REPO / "mindsponge_fold" / "cli.py"), "train", "--config", "tiny_train", "--data",
                           "d.mindrecord", "--device", "CPU"][-8:]
    proc = subprocess.run(["bash", str(REPO / "scripts" / "train_cpu.sh"), "-h"], capture_output=True, text=True)
    assert proc.returncode == 0 and "usage:" in proc.stdout
