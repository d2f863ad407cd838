"""Training step and loop (mindsponge_fold.train): schedule, recycles, overflow handling, graph re-execution,
EMA, --init-from, checkpoint/resume, and data parallelism with msrun (2 CPU workers) vs one process.

One module-scoped TrainStep (tiny_train, dropout off) serves every in-process test: MindSpore compiles per Cell
instance, so sharing it keeps the gradient graph's compile (~1-2 min on CPU) to once per module."""
import os
import signal
import socket
import subprocess
from pathlib import Path

import mindspore as ms
import numpy as np
import pytest
from train_helpers import TRAIN_OVERRIDES, make_records, train_config

from mindsponge_fold.common.config import load_config
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.common.fileio import save_npz
from mindsponge_fold.model import params as P
from mindsponge_fold.model.alphafold import build_model
from mindsponge_fold.model.primitives import ModelContext
from mindsponge_fold.train import curves, state
from mindsponge_fold.train.loop import RunOptions, resolve_resume, train
from mindsponge_fold.train.step import GradFinish, TrainStep, assign, learning_rate, make_loss_scaler, num_recycles

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return make_records(tmp_path_factory.mktemp("train_records"))


@pytest.fixture(scope="module")
def trainer():
    from mindsponge_fold.model.runner import set_graph_mode
    set_graph_mode("CPU")         # as train does (guarded: setting the device again fails once a kernel ran)
    return TrainStep(train_config())


@pytest.fixture(scope="module")
def batches(records, trainer):
    from mindsponge_fold.data.dataset import create_train_dataset
    pipeline = create_train_dataset(records, trainer.cfg, batch_size=1, shuffle=False, num_workers=1)
    return list(pipeline.create_dict_iterator(output_numpy=True, num_epochs=1))


@pytest.fixture(scope="module")
def init_npz(tmp_path_factory):
    """A tiny AlphaFold-layout weights file (official names) from a model with another init seed."""
    cfg = train_config()
    model = build_model(cfg, ModelContext.from_config(cfg, seed=11))
    path = tmp_path_factory.mktemp("init") / "params_tiny.npz"
    save_npz(path, P.export_alphafold_params(model), compressed=False)
    return path


def snapshot(trainer) -> dict:
    out = {"w." + k: v for k, v in trainer.named_weights().items()}
    out.update({"ema." + k: v for k, v in trainer.named_weights(ema=True).items()})
    out.update({k: p.asnumpy().copy() for k, p in trainer.optimizer_state().items()})
    return out


# -- schedule and recycles (host functions) ------------------------------------------------------------------------
def test_learning_rate_warmup_and_decay():
    tc = load_config("tiny_train", ["train.learning_rate=1e-3", "train.warmup_steps=4", "train.lr_decay_steps=10",
                                    "train.lr_decay_factor=0.5"]).train
    lrs = [learning_rate(s, tc) for s in range(12)]
    assert np.allclose(lrs[:4], [2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert np.allclose(lrs[4:10], 1e-3) and np.allclose(lrs[10:], 5e-4)
    tc = load_config("train_finetune").train
    assert learning_rate(0, tc) == learning_rate(20000, tc) == 5e-4          # no warm-up, no decay
    tc = load_config("train_initial").train
    assert learning_rate(0, tc) == pytest.approx(1e-6) and learning_rate(999, tc) == pytest.approx(1e-3)
    assert learning_rate(50000, tc) == pytest.approx(0.95e-3)


def test_recycle_counts_uniform_and_reproducible():
    tc = load_config("train_initial").train                                  # max_recycle 3
    counts = [num_recycles(s, tc) for s in range(4000)]
    assert counts == [num_recycles(s, tc) for s in range(4000)]              # a function of (seed, step)
    freq = np.bincount(counts, minlength=4) / len(counts)
    assert len(freq) == 4 and np.all(np.abs(freq - 0.25) < 0.03), freq
    other = load_config("train_initial", ["train.seed=5"]).train
    assert counts[:200] != [num_recycles(s, other) for s in range(200)]
    assert {num_recycles(s, load_config("tiny_train", ["train.max_recycle=0"]).train) for s in range(50)} == {0}


def test_fixed_loss_scale_never_changes():
    tc = load_config("tiny_train", ["train.loss_scale.type=fixed", "train.loss_scale.init_scale=128"]).train
    scaler = make_loss_scaler(tc)
    scaler.adjust(ms.Tensor(False))
    assert float(scaler.scale_value.asnumpy()) == 128.0


def test_unscale_and_clip_at_a_loss_scale_near_float32_overflow():
    """The dynamic loss scale climbs until loss x scale overflows float32, so scaled gradients of 1e20 and more are
    normal; their squares overflow, and a norm taken before unscaling would be inf (clip factor 0: a silent all-zero
    update that passes the finiteness check)."""
    ms.set_context(mode=ms.GRAPH_MODE)
    scale = 2.0 ** 70
    raw = [np.array([0.3, -0.4], np.float32), np.array([[1.2]], np.float32)]
    norm, clipped = GradFinish(0.1)(ms.mutable(tuple(ms.Tensor(g * scale) for g in raw)), ms.Tensor(scale, ms.float32))
    expected = np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in raw))
    assert float(norm.asnumpy()) == pytest.approx(expected, rel=1e-6)
    for g, c in zip(raw, clipped):
        np.testing.assert_allclose(c.asnumpy(), g * (0.1 / expected), rtol=1e-6)


# -- compiled step ---------------------------------------------------------------------------------------------------
def test_reexecuted_step_graphs_give_each_inputs_loss(trainer, batches):
    """Pitfall 3: the compiled graphs run again on other inputs must not return the first execution's values.

    Every step here overflows on purpose (absurd loss scale: skipped, weights unchanged), so the same weights see
    A, B, A again: A's loss must come back exactly, and differ from B's (0 and 1 recycling iterations)."""
    a, b = batches
    assert str(a["name"][0]) != str(b["name"][0])
    assert [num_recycles(s, trainer.cfg.train) for s in (0, 3)] == [0, 1]
    losses = []
    for batch, s in ((a, 0), (b, 0), (a, 0), (a, 3), (b, 3), (a, 3)):
        assign(trainer.scaler.scale_value, 3.0e38)
        got = trainer.step(batch, s)
        assert got["skipped"] and np.isfinite(got["loss"]) and got["num_recycle"] == num_recycles(s, trainer.cfg.train)
        losses.append(got["loss"])
    assert losses[0] == losses[2] and losses[3] == losses[5], losses
    assert abs(losses[0] - losses[1]) > 1e-3 and abs(losses[3] - losses[4]) > 1e-3, losses
    assert abs(losses[0] - losses[3]) > 1e-6, losses         # the recycled iteration sees other inputs


def test_overflow_skips_update_and_lowers_scale(trainer, batches):
    scale = trainer.scaler.scale_value
    assign(scale, 3.0e38)                                      # loss x scale = inf
    before = snapshot(trainer)
    got = trainer.step(batches[0], 1)
    after = snapshot(trainer)
    assert got["skipped"] and got["loss_scale"] == pytest.approx(1.5e38)
    for k, v in before.items():
        if k in ("train.loss_scale", "train.loss_scale_counter"):
            continue
        assert np.all(np.isfinite(after[k])), k
        assert np.array_equal(v, after[k]), k                  # weights, EMA, Adam moments/powers/step untouched


def test_finite_step_updates_adam_ema_and_grows_scale(trainer, batches):
    tc = trainer.cfg.train
    assign(trainer.scaler.scale_value, 1024.0)
    assert not trainer.step(batches[0], 0)["skipped"]          # one update first: zero-initialised layers move
    assign(trainer.scaler.scale_value, 1024.0)
    assign(trainer.scaler.counter, int(tc.loss_scale.scale_window) - 1)
    before = snapshot(trainer)
    got = trainer.step(batches[1], 2)
    after = snapshot(trainer)
    assert not got["skipped"] and got["loss_scale"] == 2048.0   # scale_window clean steps -> x scale_factor
    assert got["grad_norm"] > 0 and np.isfinite(got["loss"])
    names = list(trainer.named_weights())
    moved = {n for n in names if not np.array_equal(before["w." + n], after["w." + n])}
    # Adam moves exactly the weights with a non-zero first moment (zero-initialised output layers keep the layers
    # before them at zero gradient for the first steps)
    assert moved == {n for n in names if np.any(after["opt.moment1." + n])}
    assert len(moved) > 50
    d = float(tc.ema_decay)
    for n in names:                                             # EMA_t = d EMA_{t-1} + (1 - d) w_t
        np.testing.assert_allclose(after["ema." + n], d * before["ema." + n] + (1 - d) * after["w." + n],
                                   rtol=1e-5, atol=1e-7, err_msg=n)
    assert after["opt.global_step"].item() == before["opt.global_step"].item() + 1


def test_init_from_alphafold_npz(trainer, init_npz, tmp_path):
    """Weights from the file, EMA = weights, a fresh optimiser; a head the file lacks keeps its initialisation."""
    arrays = P.load_npz_arrays(init_npz)
    partial = tmp_path / "no_pae.npz"
    save_npz(partial, {k: v for k, v in arrays.items() if "predicted_aligned_error_head" not in k}, compressed=False)
    pae_before = {n: v for n, v in trainer.named_weights().items() if n.startswith("predicted_aligned_error_head")}
    fresh = state.init_weights(trainer, partial)
    assert fresh and all("predicted_aligned_error_head" in n for n in fresh)
    weights, ema = trainer.named_weights(), trainer.named_weights(ema=True)
    for n, v in weights.items():
        expected = pae_before[n] if n in pae_before else arrays[P.official_name(n)]
        assert np.array_equal(v, expected), n
        assert np.array_equal(ema[n], v), n
    opt = trainer.optimizer_state()                              # a fresh optimiser
    assert all(not np.any(p.asnumpy()) for k, p in opt.items() if k.startswith("opt.moment"))
    assert float(opt["train.loss_scale"].asnumpy()) == trainer.cfg.train.loss_scale.init_scale
    state.init_weights(trainer, init_npz)
    assert all(np.array_equal(v, arrays[P.official_name(n)]) for n, v in trainer.named_weights().items())


def test_resume_repeats_an_uninterrupted_run(trainer, records, init_npz, tmp_path):
    """6 steps vs 3 steps + resume + 3 steps: the same losses and final weights (dropout off: MindSpore's dropout
    kernel state cannot be restored)."""
    cfg = train_config(["train.checkpoint_every=3"])
    opts = dict(data=str(records), num_steps=6, progress=False, num_workers=1)
    full = train(cfg, RunOptions(out_dir=str(tmp_path / "full"), init_from=str(init_npz), **opts), trainer=trainer)
    assert full["step"] == 6 and not full["stopped"]
    ckpt3 = state.checkpoint_path(tmp_path / "full", 3)
    entries = P.read_checkpoint(ckpt3)
    for key in ("train.step", "train.loss_scale", "train.loss_scale_counter", "data.epoch", "data.index",
                "rng.seed", "rng.kernel_seed", "opt.beta1_power", "opt.global_step", "meta.config"):
        assert key in entries, key
    assert int(entries["train.step"]) == 3 and (int(entries["data.epoch"]), int(entries["data.index"])) == (1, 1)
    assert sum(k.startswith("ema.") for k in entries) == sum(k.startswith("opt.moment1.") for k in entries) > 100
    resumed = train(cfg, RunOptions(out_dir=str(tmp_path / "resumed"), resume=str(ckpt3), **opts), trainer=trainer)
    assert resumed["step"] == 6
    log_full = [r for r in curves.read_log(tmp_path / "full" / "train_log.jsonl") if r["step"] > 3]
    log_resumed = curves.read_log(tmp_path / "resumed" / "train_log.jsonl")
    assert [r["step"] for r in log_resumed] == [4, 5, 6]
    assert [r["names"] for r in log_resumed] == [r["names"] for r in log_full]
    for r, q in zip(log_full, log_resumed):
        for key in ("loss/total", "loss", "grad_norm", "lr", "loss_scale", "num_recycle"):
            assert q[key] == pytest.approx(r[key], rel=1e-5, abs=1e-7), (r["step"], key)
    a = P.read_checkpoint(state.checkpoint_path(tmp_path / "full", 6))
    b = P.read_checkpoint(state.checkpoint_path(tmp_path / "resumed", 6))
    for k, v in a.items():
        if not isinstance(v, str) and not k.startswith("rng."):
            np.testing.assert_allclose(b[k], v, rtol=1e-5, atol=1e-6, err_msg=k)


class _TermAfter:
    """The shared TrainStep, sending this process SIGTERM after its ``n``-th step."""

    def __init__(self, trainer, n):
        self.trainer, self.n, self.done = trainer, n, 0

    def step(self, batch, index):
        out = self.trainer.step(batch, index)
        self.done += 1
        if self.done == self.n:
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    def __getattr__(self, name):
        return getattr(self.trainer, name)


def test_sigterm_checkpoints_and_stops(trainer, records, tmp_path, monkeypatch, capsys):
    """SIGTERM: the step finishes, its checkpoint is written, the handler is restored, and `mindsponge-fold train`
    (in process, with the shared TrainStep) exits with 143, not 0: a scheduler must not see an unfinished run as a
    success."""
    from mindsponge_fold import cli
    from mindsponge_fold.train import loop
    seen = {}

    def train_with_term_after_2(cfg, options):
        seen["summary"] = train(cfg, options, trainer=_TermAfter(trainer, 2))
        return seen["summary"]

    monkeypatch.setattr(loop, "train", train_with_term_after_2)
    previous = signal.getsignal(signal.SIGTERM)
    overrides = [a for o in TRAIN_OVERRIDES + ["train.checkpoint_every=100"] for a in ("--set", o)]
    status = cli.main(["train", "--config", "tiny_train", *overrides, "--data", str(records), "--out", str(tmp_path),
                       "--steps", "6", "--workers", "1", "--no-progress", "--device", "CPU"])
    summary = seen["summary"]
    assert status == 143
    assert summary["stopped"] and summary["step"] == 2
    assert [s for s, _ in state.list_checkpoints(tmp_path)] == [2]
    assert int(P.read_checkpoint(summary["checkpoint"])["train.step"]) == 2
    assert signal.getsignal(signal.SIGTERM) == previous                       # the handler is restored
    assert "done: 2 steps (stopped by SIGTERM: exit status 143, continue with --resume)" in capsys.readouterr().out


def _tiny_training_checkpoint(path, step):
    """A file with just the entries that make a training checkpoint resumable (step, data position)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ms.save_checkpoint([{"name": n, "data": ms.Tensor(np.asarray(v, np.int64))}
                        for n, v in (("train.step", step), ("data.epoch", 0), ("data.index", step))], str(path))


def test_resume_choice_and_fallback(tmp_path):
    """--resume (latest): an error when OUT has no checkpoint (a mistyped --out must not restart from step 0);
    auto: start fresh then. An unreadable newest checkpoint is set aside (.corrupt) with one warning line and the
    previous one used; a named file gets no fallback; nothing readable is an error, not a fresh start."""
    out = tmp_path / "run"
    with pytest.raises(InputError, match=r"no checkpoint to resume from in .*run/checkpoints .*--resume auto") as e:
        resolve_resume("latest", out)
    assert "\n" not in str(e.value)
    assert resolve_resume("auto", out) is None and resolve_resume(None, out) is None
    for s in (2, 4):
        _tiny_training_checkpoint(state.checkpoint_path(out, s), s)
    path, entries = resolve_resume("latest", out)
    assert path == state.checkpoint_path(out, 4) and int(entries["train.step"]) == 4
    newest = state.checkpoint_path(out, 4)
    newest.write_bytes(newest.read_bytes()[:-10])                           # truncated
    warnings = []
    path, entries = resolve_resume("auto", out, warn=warnings.append)
    assert path == state.checkpoint_path(out, 2) and int(entries["train.step"]) == 2
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert str(newest) in warnings[0] and "renamed to step_00000004.ckpt.corrupt" in warnings[0]
    assert not newest.exists() and [s for s, _ in state.list_checkpoints(out)] == [2]
    corrupt = newest.with_name(newest.name + ".corrupt")
    with pytest.raises(InputError, match="not a readable"):                  # a named file: no fallback
        resolve_resume(str(corrupt), out)
    state.checkpoint_path(out, 2).write_bytes(b"\0" * 64)                    # overwritten
    with pytest.raises(InputError, match="none of the 1 checkpoint"):
        resolve_resume("auto", out, warn=warnings.append)
    _tiny_training_checkpoint(state.checkpoint_path(out, 6), 6)
    state.checkpoint_path(out, 8).write_bytes(b"")
    assert resolve_resume("latest", out, is_main=False, warn=warnings.append)[0] == state.checkpoint_path(out, 6)
    assert state.checkpoint_path(out, 8).exists()                            # only the main rank renames


def test_stale_temporaries_removed(tmp_path):
    d = state.checkpoint_dir(tmp_path)
    d.mkdir(parents=True)
    keep = [d / "step_00000002.ckpt", d / "notes.txt", tmp_path / "config.yaml", tmp_path / ".hidden"]
    stale = [d / ".step_00000004.ckpt.a1b2c3.tmp.ckpt", tmp_path / ".train_log.jsonl.x9.tmp",
             tmp_path / ".training_curve.png.q1.tmp.png"]
    for p in keep + stale:
        p.write_bytes(b"x")
    removed = state.remove_stale_temporaries(tmp_path, ("config.yaml", "train_log.jsonl", "training_curve.png"))
    assert removed == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)


def test_log_drops_a_truncated_last_line(tmp_path, capsys):
    log = tmp_path / "train_log.jsonl"
    log.write_text('{"kind": "train", "step": 1}\n{"kind": "train", "step": 2}\n{"kind": "train", "st')
    assert [r["step"] for r in curves.read_log(log)] == [1, 2]
    err = capsys.readouterr().err
    assert "dropped a truncated last line" in err and f"{log}:3" in err and len(err.strip().splitlines()) == 1
    curves.truncate_log(log, 1)
    assert log.read_text() == '{"kind": "train", "step": 1}\n'
    log.write_text('{"kind": "train", "step": 1}\n{"kind": "tr\n{"kind": "train", "step": 3}\n')
    with pytest.raises(InputError, match=r"train_log.jsonl:2: not a JSON line"):   # not a cut-off write: an error
        curves.read_log(log)


def test_resume_after_a_kill(trainer, records, tmp_path, capsys):
    """What a kill can leave behind: a half-written last log line, a temporary checkpoint file, an unreadable newest
    checkpoint. `--resume` sets that checkpoint aside, resumes from the previous one and says which, removes the
    temporary file and drops the log line; the repeated steps equal the first run's."""
    cfg = train_config(["train.checkpoint_every=2", "train.keep_checkpoints=3"])
    opts = dict(data=str(records), out_dir=str(tmp_path), num_steps=4, progress=False, num_workers=1)
    train(cfg, RunOptions(**opts), trainer=trainer)
    log = tmp_path / "train_log.jsonl"
    first = curves.read_log(log)
    ckpts = dict(state.list_checkpoints(tmp_path))
    assert sorted(ckpts) == [2, 4]
    ckpts[4].write_bytes(ckpts[4].read_bytes()[: ckpts[4].stat().st_size // 2])
    stale = state.checkpoint_dir(tmp_path) / ".step_00000006.ckpt.k2j3x9.tmp.ckpt"
    stale.write_bytes(b"partial")
    with open(log, "a") as f:
        f.write('{"kind": "train", "step": 5, "lo')
    capsys.readouterr()
    summary = train(cfg, RunOptions(resume="latest", **opts), trainer=trainer)
    out, err = capsys.readouterr()
    assert summary["step"] == 4 and not summary["stopped"]
    assert f"resuming from {ckpts[2]} (step 2 of 4)" in out
    assert f"removed 1 temporary file(s) of an interrupted write: {stale.name}" in out and not stale.exists()
    warned = [line for line in err.splitlines() if "step_00000004.ckpt" in line]
    assert len(warned) == 1 and warned[0].startswith("warning: ")
    assert "renamed to step_00000004.ckpt.corrupt" in warned[0]
    assert "dropped a truncated last line" in err
    assert ckpts[4].with_name(ckpts[4].name + ".corrupt").exists()
    assert int(state.read_training_checkpoint(ckpts[4])["train.step"]) == 4    # written again
    again = curves.read_log(log)
    assert [r["step"] for r in again] == [1, 2, 3, 4]
    for r, q in zip(first[2:], again[2:]):
        for key in ("loss/total", "grad_norm", "lr", "loss_scale", "num_recycle"):
            assert q[key] == pytest.approx(r[key], rel=1e-5, abs=1e-7), (r["step"], key)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_cpu_ranks_equal_one_process_on_the_union_batch(trainer, records, init_npz, tmp_path):
    """scripts/train_cpu.sh (msrun, 2 workers, 1 example each) == one process with batch_size 2: per-example clipping
    then averaging. The all-reduced gradient of step 1 on each rank equals the single process's gradient of the
    union batch before the optimiser (a sum instead of a mean, or a rank's shard missing or doubled, changes it);
    both ranks end with identical weights."""
    out = tmp_path / "msrun"
    argv = ["bash", str(REPO / "scripts" / "train_cpu.sh"), "-n", "2", "--master-port", str(_free_port()),
            "--log-dir", str(tmp_path / "msrun_log"), "--timeout", "300", "--",
            "--config", "tiny_train", *[a for o in TRAIN_OVERRIDES for a in ("--set", o)], "--data", str(records),
            "--out", str(out), "--init-from", str(init_npz), "--steps", "2", "--workers", "1", "--no-progress",
            "--dump-rank-weights", "--dump-rank-gradients"]
    env = {**os.environ, "GLOG_v": "3"}
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    logs = "".join(p.read_text(errors="replace")[-3000:] for p in sorted((tmp_path / "msrun_log").glob("*.log")))
    assert proc.returncode == 0, proc.stderr[-3000:] + logs
    ranks = [P.load_npz_arrays(out / f"rank_{r}_final.npz") for r in range(2)]
    assert ranks[0].keys() == ranks[1].keys()
    for k in ranks[0]:
        assert np.array_equal(ranks[0][k], ranks[1][k]), k
    assert state.latest_checkpoint(out) is not None and not (tmp_path / "msrun" / "rank_1").exists()
    # the single-process run on the union batch, with this module's compiled step
    single = tmp_path / "single"
    train(train_config(["train.batch_size=2"]),
          RunOptions(data=str(records), out_dir=str(single), init_from=str(init_npz), num_steps=2, progress=False,
                     num_workers=1, dump_rank_weights=True, dump_rank_gradients=True), trainer=trainer)
    rank_grads = [P.load_npz_arrays(out / f"rank_{r}_step_1_gradients.npz") for r in range(2)]
    union = P.load_npz_arrays(single / "rank_0_step_1_gradients.npz")
    assert rank_grads[0].keys() == rank_grads[1].keys() == union.keys()
    assert set(union) <= set(P.load_npz_arrays(init_npz))
    scale = max(float(np.abs(g).max()) for g in union.values())
    assert scale > 0
    for k, g in union.items():
        for r in range(2):
            np.testing.assert_allclose(rank_grads[r][k], g, rtol=1e-4, atol=1e-6 * scale, err_msg=f"rank {r}: {k}")
    reference = P.load_npz_arrays(single / "rank_0_final.npz")
    init = P.load_npz_arrays(init_npz)
    moved = max(float(np.max(np.abs(reference[k] - init[k]))) for k in init)
    diffs = {k: float(np.max(np.abs(ranks[0][k] - reference[k]))) for k in reference}
    # Adam moves a weight by ~lr per step whatever its gradient's size, so the last-bit difference between averaging
    # on the host and all-reducing can flip the direction for near-zero gradients (measured: <1e-5 in a few tensors,
    # the rest < 1e-6). A wrong shard (a sample twice, one missing) changes most tensors by ~lr (2e-4..6e-4 here).
    assert moved > 3e-4
    assert max(diffs.values()) < 5e-5, max(diffs.items(), key=lambda kv: kv[1])
    assert sum(d > 1e-6 for d in diffs.values()) < 0.2 * len(diffs)
    names = [r["names"] for r in curves.read_log(single / "train_log.jsonl")]
    assert all(sorted(n) == ["1psm_A", "2crb_A"] for n in names)
