"""What a ``predict`` run records per target, and reusing a model's outputs from an earlier run.

Each target directory gets ``config.yaml`` (the resolved config of every model, under its name) and ``run.json``
(the command line, working directory, version and, per model, its weights, feature-processing seed (with
``model.global_config.eval_dropout`` also its ``dropout_seed``, the same number, as AlphaFold) and *fingerprint*).
The fingerprint is a hash of everything a model's outputs depend on: its config (less the relax section), its
weights file (path, size, modification time) or random-weights seed, the feature-processing seed, the raw features
and the output options that change what ``result_<model>.npz`` holds. A rerun reuses a model whose fingerprint
equals the one recorded in an earlier run's directory (a stopped run's hidden directory, or the target directory
when it was finished with other models) and whose ``result_<model>.npz``, written last, is there.
"""
from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import time
from pathlib import Path

import numpy as np
import yaml

from mindsponge_fold.common.fileio import atomic_path, write_json, write_text

RUN_RECORD = "run.json"
CONFIG_RECORD = "config.yaml"
# the files of one model, result_<model>.npz last: it marks the model as complete
MODEL_FILES = ("unrelaxed_{}.pdb", "unrelaxed_{}.cif", "confidence_{}.json", "pae_{}.json", "result_{}.npz")


def features_digest(features: dict) -> str:
    """sha256 of a feature dict: names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for key in sorted(features):
        arr = np.ascontiguousarray(features[key])
        h.update(f"{key}|{arr.dtype.str}|{arr.shape}|".encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def _weights_identity(spec) -> list:
    if spec.weights is None:
        return ["random", int(spec.random_seed)]
    path = Path(spec.weights).resolve()
    stat = path.stat()
    return [str(path), stat.st_size, stat.st_mtime_ns]


def model_fingerprint(spec, settings, features_sha: str, seed: int) -> str:
    """The fingerprint of one model's outputs for one target (see the module docstring)."""
    cfg = {k: v for k, v in spec.cfg.to_dict().items() if k != "relax"}
    blob = json.dumps({"config": cfg, "weights": _weights_identity(spec), "use_ema": bool(settings.models.use_ema),
                       "bucket": bool(settings.models.bucket), "seed": int(seed), "features": features_sha,
                       "save_representations": bool(settings.outputs.save_representations)},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def write_run_record(directory: Path, settings, specs, seeds: dict, fingerprints: dict) -> None:
    """config.yaml and run.json of a target (atomic writes)."""
    from mindsponge_fold import __version__
    header = ("# the resolved config of each model of this prediction, under the model's name (a model's section is a "
              "complete config: mindsponge-fold --config accepts it as a file of its own)\n")
    write_text(directory / CONFIG_RECORD,
               header + yaml.safe_dump({s.name: s.cfg.to_dict() for s in specs}, sort_keys=False))
    write_json(directory / RUN_RECORD, {
        "command": shlex.join(settings.command) if settings.command else None,
        "cwd": os.getcwd(),
        "version": __version__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "models": {s.name: {"weights": s.weights or f"random weights, seed {s.random_seed}",
                            "feature_seed": seeds[s.name], "fingerprint": fingerprints[s.name],
                            **({"dropout_seed": seeds[s.name]} if s.cfg.model.global_config.eval_dropout else {})}
                   for s in specs},
    }, indent=1)


def _recorded_fingerprint(directory: Path, name: str) -> str | None:
    try:
        return json.loads((directory / RUN_RECORD).read_text())["models"][name]["fingerprint"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def reuse_model(earlier, name: str, fingerprint: str, work: Path) -> tuple[dict, Path] | None:
    """Copy the outputs of model ``name`` from the first of the ``earlier`` directories that recorded the same
    fingerprint and holds its result_<name>.npz into ``work``; returns (its outputs, that directory) or None."""
    for directory in earlier:
        if _recorded_fingerprint(directory, name) != fingerprint or not (directory / f"result_{name}.npz").is_file():
            continue
        for pattern in MODEL_FILES:
            source = directory / pattern.format(name)
            if source.is_file():
                with atomic_path(work / source.name) as tmp:
                    shutil.copyfile(source, tmp)
        with np.load(work / f"result_{name}.npz", allow_pickle=False) as f:
            return {k: f[k] for k in f.files}, directory
    return None
