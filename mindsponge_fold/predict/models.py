"""Model stage of ``predict``: which models run, with which config and weights, through ``ModelRunner.run`` (the one
inference code path, shared with ``run-features``).

``--models`` lists ``NAME[=WEIGHTS]`` entries (comma-separated, the option may repeat). A model's config is the
preset named NAME (``model_1`` ... ``model_5_ptm``, ``tiny``), or ``--preset`` for every model, or an AlphaFold
``config.json`` (``--af-config``); ``--set`` overrides apply to all. Weights: the entry's path (AlphaFold ``.npz``
or our ``.ckpt``), else ``--params-dir/params_NAME.npz`` (AlphaFold's file names), else, with
``--random-weights``, a seeded random initialisation (:func:`random_alphafold_params`).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mindsponge_fold.common.config import (apply_overrides, available_presets, check_precision,
                                           load_alphafold_config_file, load_config)
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.model.params import weights_format
from mindsponge_fold.predict.settings import DEFAULT_MODELS, ModelSettings



@dataclasses.dataclass
class ModelSpec:
    name: str
    cfg: object
    weights: str | None          # None: random weights
    random_seed: int = 0
    runner: object = None         # shared by every model with the same config (one compiled graph)
    weights_source: object = None  # path, or AlphaFold-layout arrays for random weights
    use_ema: bool = False

    @property
    def has_pae_head(self) -> bool:
        return float(self.cfg.model.heads.predicted_aligned_error.weight) > 0

    def describe(self) -> str:
        return f"{self.name} ({self.weights or f'random weights, seed {self.random_seed}'})"


def parse_model_entries(values) -> list[tuple[str, str | None]]:
    entries = []
    for value in values or [DEFAULT_MODELS]:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            name, _, path = item.partition("=")
            name = name.strip()
            if not name or any(c in name for c in "/\\ "):
                raise InputError(f"--models entry {item!r}: expected NAME[=WEIGHTS] with a plain model name")
            entries.append((name, path.strip() or None))
    if not entries:
        raise InputError("--models lists no model")
    names = [n for n, _ in entries]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise InputError(f"--models names model '{dup}' twice")
    return entries


def model_config(name: str, settings: ModelSettings):
    overrides = list(settings.overrides)
    if settings.num_recycle is not None:
        if settings.num_recycle < 0:
            raise InputError(f"--num-recycle must be >= 0, got {settings.num_recycle}")
        overrides.append(f"model.num_recycle={settings.num_recycle}")
    if settings.af_config:
        return apply_overrides(load_alphafold_config_file(settings.af_config), overrides)
    preset = settings.preset or name
    if not settings.preset and preset not in available_presets():
        raise InputError(f"model '{name}': no config preset of that name (presets: {', '.join(available_presets())});"
                         f" name the model after one or give --preset")
    return load_config(preset, overrides)


def resolve_models(settings: ModelSettings) -> list[ModelSpec]:
    """Model specs with configs and weight paths; checks that every weights file exists (no model built yet)."""
    specs = []
    for index, (name, path) in enumerate(parse_model_entries(settings.models)):
        cfg = model_config(name, settings)
        check_precision(cfg, settings.device)
        if path is None and settings.params_dir:
            path = str(Path(settings.params_dir) / f"params_{name}.npz")
        if path is None and not settings.random_weights:
            raise InputError(f"model '{name}': no weights (give {name}=WEIGHTS in --models, --params-dir, or "
                             f"--random-weights)")
        if path is not None:
            try:
                weights_format(path)         # a file that is not weights at all: said now, before any model loads
            except InputError as e:
                raise InputError(f"model '{name}': {e.problem}", e.path) from None
        specs.append(ModelSpec(name, cfg, path, random_seed=settings.seed + index))
    return specs


def random_alphafold_params(cfg, seed: int = 0, scale: float = 0.02) -> dict:
    """Random weights in AlphaFold's .npz layout for the model of ``cfg``: a fresh, seeded initialisation with every
    array perturbed as the reference fixture's (w += scale * (1 + |w|) * N(0, 1)), so that AlphaFold's
    zero-initialised output layers do not make every update and head output exactly zero."""
    from mindsponge_fold.model.alphafold import build_model
    from mindsponge_fold.model.params import export_alphafold_params
    from mindsponge_fold.model.primitives import ModelContext
    arrays = export_alphafold_params(build_model(cfg, ModelContext.from_config(cfg, seed=seed)))
    rng = np.random.default_rng(seed + 1000003)
    return {k: (v + scale * (1.0 + np.abs(v)) * rng.standard_normal(v.shape)).astype(np.float32)
            for k, v in sorted(arrays.items())}


def load_runner(spec: ModelSpec, settings: ModelSettings, shared: dict | None = None):
    """The runner for ``spec``: built once per distinct config (models that differ only in weights share the
    compiled graph) with this model's weights checked by loading them now, so a weights file for another model is
    refused before any target runs (InputError). Random weights are AlphaFold-layout arrays, loaded by the same
    strict path as released weights."""
    import json
    from mindsponge_fold.model.runner import ModelRunner
    shared = {} if shared is None else shared
    key = json.dumps(spec.cfg.to_dict(), sort_keys=True, default=str)
    spec.weights_source = spec.weights if spec.weights is not None else random_alphafold_params(
        spec.cfg, spec.random_seed)
    try:
        if key not in shared:
            shared[key] = ModelRunner(spec.cfg, None, bucket=settings.bucket,
                                      device=settings.device, compile_cache=settings.compile_cache)
        runner = shared[key]
        spec.use_ema = bool(settings.use_ema)
        runner.load_weights(spec.weights_source, use_ema=spec.use_ema, weights_id=spec.name)
    except InputError as e:
        raise InputError(f"model '{spec.name}': {e.problem}", e.path, e.line) from None
    return runner


def run_model(spec: ModelSpec, features: dict, source=None, progress=None, seed: int = 0) -> tuple[dict, dict]:
    """``ModelRunner.run`` on one example; returns (outputs, timings) with the compile time split off:
    ``compile_s`` = first call minus a steady iteration (0 when the shape was compiled before). ``seed``: the
    model's seed, which draws its dropout masks with ``model.global_config.eval_dropout``."""
    if spec.runner.weights_id != spec.name:       # the runner is shared with another model of the same config
        spec.runner.load_weights(spec.weights_source, use_ema=spec.use_ema, weights_id=spec.name)
    outputs, t = spec.runner.run(features, source=source, on_iteration=progress, seed=seed)
    iterations = t["iterations_s"]
    total = float(sum(iterations))
    compile_s = 0.0
    if "first_call_s" in t:
        steady = float(np.median(iterations[1:])) if len(iterations) > 1 else 0.0
        compile_s = max(float(t["first_call_s"]) - steady, 0.0)
    return outputs, {"predict_and_compile": total, "compile": compile_s, "predict": total - compile_s,
                     "iterations": [float(x) for x in iterations]}
