"""Shared pieces of the scripts/bench_*.py benchmarks: synthetic model inputs of the right shapes, peak memory,
machine facts, JSON results. No MindSpore import here (the AlphaFold-side driver does not have it)."""
from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402


def eval_sizes(cfg, n_res: int) -> dict:
    """N_res / N_seq / N_extra / N_templ of the inference pipeline's padded features for a config."""
    from mindsponge_fold.data import transforms
    return transforms.pad_sizes(transforms.settings_from_config(cfg, "eval"), n_res)


def synthetic_iteration(cfg, n_res: int) -> dict:
    """:func:`synthetic_features` at ``cfg``'s evaluation sizes plus the row masks, template probabilities and
    distillation flag that AlphaFold's full-model input also carries (all ones / not distillation)."""
    sizes = eval_sizes(cfg, n_res)
    feats = synthetic_features(sizes)
    feats.update({"msa_row_mask": np.ones(sizes["N_seq"], np.float32),
                  "extra_msa_row_mask": np.ones(sizes["N_extra"], np.float32),
                  "template_sum_probs": np.ones((sizes["N_templ"], 1), np.float32),
                  "is_distillation": np.float32(0)})
    return feats


def synthetic_features(sizes: dict, seed: int = 0) -> dict:
    """Random processed features of one recycling iteration (no batch axis) with every model input the feature
    table lists, at the given symbolic sizes. Values are plausible (one-hots, masks of ones, residue-type atom
    maps), not a real protein: for timing and memory only."""
    from mindsponge_fold.common import all_atom
    from mindsponge_fold.data import feature_shapes as fs
    rng = np.random.default_rng(seed)
    n, s, e, t = (sizes[k] for k in (fs.N_RES, fs.N_SEQ, fs.N_EXTRA, fs.N_TEMPL))
    aatype = rng.integers(0, 20, n).astype(np.int32)
    pos = (rng.standard_normal((t, n, 37, 3)) * 10).astype(np.float32)
    msa = rng.integers(0, 21, (s, n)).astype(np.int32)
    f = {
        "aatype": aatype, "residue_index": np.arange(n, dtype=np.int32), "seq_length": np.int32(n),
        "seq_mask": np.ones(n, np.float32), "target_feat": np.eye(22, dtype=np.float32)[aatype + 1],
        "msa_feat": rng.random((s, n, 49)).astype(np.float32), "msa_mask": np.ones((s, n), np.float32),
        "bert_mask": (rng.random((s, n)) < 0.15).astype(np.float32), "true_msa": msa,
        "extra_msa": rng.integers(0, 23, (e, n)).astype(np.int32), "extra_msa_mask": np.ones((e, n), np.float32),
        "extra_has_deletion": np.zeros((e, n), np.float32), "extra_deletion_value": np.zeros((e, n), np.float32),
        "template_aatype": rng.integers(0, 21, (t, n)).astype(np.int32), "template_all_atom_positions": pos,
        "template_all_atom_masks": np.ones((t, n, 37), np.float32), "template_mask": np.ones(t, np.float32),
        "template_pseudo_beta": pos[:, :, 1].copy(), "template_pseudo_beta_mask": np.ones((t, n), np.float32),
    }
    f.update(all_atom.make_atom14_masks(aatype))
    return {k: (v.astype(fs.INPUT_FEATURES[k].dtype) if k in fs.INPUT_FEATURES else v) for k, v in f.items()}


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (GiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def machine_info() -> dict:
    info = {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg_1min": round(os.getloadavg()[0], 2),
            "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        import psutil
        info["mem_total_gib"] = round(psutil.virtual_memory().total / 2 ** 30, 1)
        info["mem_available_gib"] = round(psutil.virtual_memory().available / 2 ** 30, 1)
    except ImportError:
        pass
    return info


def set_config_values(cfg, items) -> None:
    """``key.path=JSON`` overrides (the AlphaFold-side drivers' ``--set``) applied to a nested config (AlphaFold's
    ``ConfigDict``) in place."""
    for item in items:
        key, value = item.split("=", 1)
        node = cfg
        *path, last = key.split(".")
        for p in path:
            node = node[p]
        node[last] = json.loads(value)


def write_result(path, data: dict) -> None:
    from mindsponge_fold.common.fileio import write_json
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_json(path, data)
    print(f"wrote {path}", flush=True)


def child_command(script: str, argv: list, sweep_option: str, value) -> list:
    """The command that re-runs a sweep script (``script``, parsed from ``argv``) for one value: the same arguments,
    with ``sweep_option`` and its values (``nargs='+'``) replaced by ``--one value``."""
    kept, in_sweep = [], False
    for a in argv:
        if a == sweep_option or a.startswith(sweep_option + "="):
            in_sweep = a == sweep_option
            continue
        if in_sweep and not a.startswith("--"):
            continue
        in_sweep = False
        kept.append(a)
    return [sys.executable, os.path.abspath(script), *kept, "--one", str(value)]


def sweep_main(parser, argv, run_one, sweep) -> None:
    """Entry point of the sweep benchmarks: with ``--one N`` run one configuration in this process and print its JSON
    line (the child), otherwise ``sweep(args, argv)`` (the parent, starting a child per configuration)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args)), flush=True)
    else:
        sweep(args, argv)


def run_guarded(cmd: list, mem_limit_gib: float, timeout_s: float, poll_s: float = 0.5) -> dict:
    """Run ``cmd`` in a subprocess, killing it when its resident memory (with children) exceeds ``mem_limit_gib``
    or it runs longer than ``timeout_s``. Returns {returncode, stdout, stderr tail, killed: None|'memory'|'time',
    max_rss_seen_gib}. The child's last stdout line that parses as JSON is returned as ``result``."""
    import psutil
    env = dict(os.environ, GLOG_v=os.environ.get("GLOG_v", "3"))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    ps = psutil.Process(proc.pid)
    killed, seen, t0 = None, 0.0, time.time()
    import threading
    out_chunks, err_chunks = [], []
    readers = [threading.Thread(target=lambda: out_chunks.append(proc.stdout.read()), daemon=True),
               threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)]
    for r in readers:
        r.start()
    while proc.poll() is None:
        try:
            rss = ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True))
        except psutil.Error:
            rss = 0
        seen = max(seen, rss / 2 ** 30)
        if seen > mem_limit_gib:
            killed = "memory"
        elif time.time() - t0 > timeout_s:
            killed = "time"
        if killed:
            proc.kill()
            break
        time.sleep(poll_s)
    proc.wait()
    for r in readers:
        r.join(timeout=10)
    stdout, stderr = "".join(out_chunks), "".join(err_chunks)
    result = None
    for line in reversed(stdout.strip().splitlines()):
        try:
            result = json.loads(line)
            break
        except json.JSONDecodeError:
            continue
    return {"returncode": proc.returncode, "killed": killed, "max_rss_seen_gib": round(seen, 2),
            "wall_s": round(time.time() - t0, 1), "result": result, "stderr_tail": stderr.strip().splitlines()[-5:]}


def run_entry(run: dict, fallback: dict) -> dict:
    """One sweep entry from a :func:`run_guarded` result: the child's JSON (or ``fallback`` when it printed none) with
    ``status`` (ok | killed (why) | failed (exit N)), ``wall_s``, ``max_rss_seen_gib`` and, when not ok, the stderr
    tail."""
    entry = dict(run["result"] or fallback)
    entry.update({"status": "ok" if run["returncode"] == 0 and run["result"] else
                  (f"killed ({run['killed']})" if run["killed"] else f"failed (exit {run['returncode']})"),
                  "wall_s": run["wall_s"], "max_rss_seen_gib": run["max_rss_seen_gib"]})
    if entry["status"] != "ok":
        entry["stderr_tail"] = run["stderr_tail"]
    return entry
