"""One config system: yaml presets validated against ``base.yaml``, dotted overrides, AlphaFold configs.

The presets are package data (``mindsponge_fold/config/*.yaml``), so an installed package finds them.

* ``base.yaml`` holds every key that exists, with its default (AlphaFold 2.3 monomer defaults for ``data`` and
  ``model``, plus this project's ``precision``, ``buckets``, ``chunking`` and ``train`` sections).
* A preset (``<name>.yaml``) overrides a subset. It may name parent presets in ``defaults: [a, b]``; they are
  applied first, in order. Every key of a preset or an override must exist in base: an unknown key is an error that
  names it (with the closest existing key), and so is a value of the wrong type.
* ``load_config("model_1_ptm", overrides=["model.num_recycle=1"])`` returns a :class:`ConfigDict`.
* ``from_alphafold_config(d)`` reads AlphaFold's own resolved config (``full_config`` in the reference fixture's
  config.json), so a fixture's exact settings can be reproduced.
"""
from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path
from typing import Iterable

import yaml

from mindsponge_fold.common.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"      # mindsponge_fold/config: package data

class SameAs(str):
    """Rule of a derived key in an AlphaFold config: accepted when it equals the named key."""


def _false(v) -> bool:
    return v is False


# Keys of AlphaFold's config that this implementation reads nowhere, or derives from another key: not in base.yaml,
# and a preset or --set that names one is an error saying why. In an AlphaFold config (from_alphafold_config) the key
# (or a key under it) is dropped when its value is one this implementation behaves as (the rule: None = any value,
# because it selects kernels or layouts of the same computation; a predicate; or SameAs the key that holds the setting
# here), and is the same error, naming the key, otherwise. Every other AlphaFold key is in base.yaml and works.
UNSUPPORTED_KEYS = {
    "data.common.num_recycle": (SameAs("model.num_recycle"),
                                "derived from model.num_recycle (the recycling count has one home: set that)"),
    "model.resample_msa_in_recycling": (SameAs("data.common.resample_msa_in_recycling"),
                                        "derived from data.common.resample_msa_in_recycling (set that)"),
    "data.common.template_features": (None, "AlphaFold's feature-name list; the feature table is "
                                            "mindsponge_fold.data.feature_shapes"),
    "data.common.unsupervised_features": (None, "AlphaFold's feature-name list; the feature table is "
                                                "mindsponge_fold.data.feature_shapes"),
    "data.eval.fixed_size": (lambda v: v is True, "inference always pads to fixed sizes (buckets.num_res)"),
    "model.embeddings_and_evoformer.evoformer.outer_product_mean.chunk_size": (
        None, "inference chunking is one setting here: chunking.chunk_size"),
    "model.embeddings_and_evoformer.template.subbatch_size": (
        None, "inference chunking is one setting here: chunking.chunk_size"),
    "model.global_config.subbatch_size": (None, "inference chunking is one setting here: chunking.chunk_size"),
    "model.global_config.multimer_mode": (_false, "multimer models are not implemented"),
    "model.heads.structure_module.fape.clamp_type": (lambda v: v == "relu",
                                                     "FAPE clamping is AlphaFold's 'relu' clamp only"),
    "model.stop_at_score": (lambda v: v >= 100, "stopping at a confidence score is not implemented"),
    "data.eval.feat": (None, "AlphaFold's feature shape table; here it is mindsponge_fold.data.feature_shapes"),
    "model.global_config.bfloat16": (_false, "the compute precision is precision.compute_dtype (set that)"),
    "model.global_config.bfloat16_output": (_false, "outputs are float32; the compute precision is "
                                                    "precision.compute_dtype"),
    "model.global_config.fp8": (_false, "fp8 matmuls are not implemented; the compute precision is "
                                        "precision.compute_dtype"),
    "model.global_config.half_dtype": (None, "the half type of bfloat16 mode; the compute precision is "
                                             "precision.compute_dtype"),
    "model.global_config.compute_capability": (None, "a GPU kernel switch of AlphaFold's JAX code"),
    "model.global_config.kernel_backend": (None, "a GPU kernel switch of AlphaFold's JAX code"),
    "model.global_config.use_pallas": (None, "a GPU kernel switch of AlphaFold's JAX code"),
    "model.global_config.length_buckets": (None, "padding to length buckets is buckets.num_res here"),
}


class ConfigDict(dict):
    """A dict whose keys are also attributes (``cfg.model.heads.distogram.weight``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for k, v in list(self.items()):
            if isinstance(v, dict) and not isinstance(v, ConfigDict):
                super().__setitem__(k, ConfigDict(v))

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = ConfigDict(value) if isinstance(value, dict) and not isinstance(value, ConfigDict) else value

    def __deepcopy__(self, memo):
        return ConfigDict(copy.deepcopy(dict(self), memo))

    def to_dict(self) -> dict:
        return {k: v.to_dict() if isinstance(v, ConfigDict) else copy.deepcopy(v) for k, v in self.items()}

    def get_path(self, dotted: str):
        node = self
        for part in dotted.split("."):
            node = node[part]
        return node

    def flatten(self, prefix: str = "") -> dict:
        out = {}
        for k, v in self.items():
            key = f"{prefix}{k}"
            if isinstance(v, ConfigDict) and v:
                out.update(v.flatten(key + "."))
            else:
                out[key] = v
        return out


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must be a mapping at top level")
    return data


def base_config() -> ConfigDict:
    return ConfigDict(_read_yaml(CONFIG_DIR / "base.yaml"))


def available_presets() -> list[str]:
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if p.stem != "base")


def _preset_path(name_or_path) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return p
    candidate = CONFIG_DIR / f"{name_or_path}.yaml"
    if not candidate.exists():
        close = difflib.get_close_matches(str(name_or_path), available_presets(), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (available: {', '.join(available_presets())})"
        raise ConfigError(f"unknown config preset '{name_or_path}'{hint}")
    return candidate


# keys whose value may take more than the default's type: key -> accepted values beyond that type
EXTRA_VALUES = {"use_remat": ("host", "graph"), "native_kernels": (True, False)}


def _type_ok(default, value, key: str = "") -> bool:
    if default is None or value is None:
        return True
    if any(value is v or (isinstance(v, str) and value == v) for v in EXTRA_VALUES.get(key, ())):
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, str):
        return isinstance(value, str)
    if isinstance(default, list):
        return isinstance(value, list)
    if isinstance(default, dict):
        return isinstance(value, dict)
    return True


def merge_into(target: ConfigDict, updates: dict, schema: dict, source: str, prefix: str = "") -> None:
    """Recursively apply ``updates`` onto ``target``; every key must exist in ``schema`` (base config)."""
    for key, value in updates.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            if dotted in UNSUPPORTED_KEYS:
                raise ConfigError(f"{source}: '{dotted}' is not a setting here: {UNSUPPORTED_KEYS[dotted][1]}")
            close = difflib.get_close_matches(key, list(schema.keys()), n=1)
            hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
            raise ConfigError(f"{source}: unknown config key '{dotted}'{hint}")
        default = schema[key]
        if isinstance(default, dict) and default:
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{dotted}' is a section, got {type(value).__name__}")
            merge_into(target[key], value, default, source, dotted + ".")
            continue
        if not _type_ok(default, value, key):
            extra = "".join(f" or {v!r}" for v in EXTRA_VALUES.get(key, ()))
            raise ConfigError(f"{source}: '{dotted}' must be {type(default).__name__}{extra}, got {value!r}")
        if isinstance(default, float) and isinstance(value, int):
            value = float(value)
        target[key] = ConfigDict(value) if isinstance(value, dict) else copy.deepcopy(value)


def _apply_preset(cfg: ConfigDict, schema: ConfigDict, name_or_path, seen: tuple = ()) -> None:
    path = _preset_path(name_or_path)
    if path.resolve() in seen:
        raise ConfigError(f"{path}: 'defaults' includes itself")
    data = _read_yaml(path)
    parents = data.pop("defaults", []) or []
    if isinstance(parents, str):
        parents = [parents]
    for parent in parents:
        _apply_preset(cfg, schema, parent, seen + (path.resolve(),))
    merge_into(cfg, data, schema, str(path))


def parse_override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.path=value")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    if isinstance(value, str):          # YAML 1.1 reads "5e-4" as a string; users mean a number
        try:
            value = float(value)
        except ValueError:
            pass
    return key.strip(), value


def apply_overrides(cfg: ConfigDict, overrides: Iterable[str] | dict, schema: ConfigDict | None = None,
                    source: str = "override") -> ConfigDict:
    """``cfg`` with the dotted overrides applied (in place) and every value checked (:func:`check_config`)."""
    schema = schema if schema is not None else base_config()
    items = overrides.items() if isinstance(overrides, dict) else (parse_override(o) for o in overrides)
    for key, value in items:
        nested: dict = {}
        node = nested
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
        merge_into(cfg, nested, schema, source)
    check_config(cfg)
    return cfg


def load_config(preset="model_1_ptm", overrides: Iterable[str] | dict = ()) -> ConfigDict:
    """Base config + preset (with its ``defaults`` chain) + dotted overrides, validated."""
    schema = base_config()
    cfg = copy.deepcopy(schema)
    if preset:
        _apply_preset(cfg, schema, preset)
    return apply_overrides(cfg, overrides, schema)      # (checks the values: check_config)


def _int_at_least(value, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


# keys whose value must be an integer >= the bound (a size, a count or an interval in steps), with what it means
INT_MINIMUMS = {
    "model.num_recycle": (0, "recycling iterations at inference"),
    "model.embeddings_and_evoformer.evoformer_num_block": (1, "Evoformer blocks"),
    "model.embeddings_and_evoformer.extra_msa_stack_num_block": (1, "extra-MSA stack blocks"),
    "model.embeddings_and_evoformer.template.template_pair_stack.num_block": (1, "template pair stack blocks"),
    "model.embeddings_and_evoformer.template.max_templates": (0, "templates the model embeds"),
    "model.heads.structure_module.num_layer": (1, "structure module layers"),
    "data.common.max_extra_msa": (0, "extra-MSA rows; 0 = none"),
    "data.eval.max_msa_clusters": (1, "MSA cluster rows, the query included"),
    "data.eval.max_templates": (0, "templates per example"),
    "data.eval.num_ensemble": (1, "ensemble members"),
    "data.train.max_msa_clusters": (1, "MSA cluster rows, the query included"),
    "data.train.max_extra_msa": (0, "extra-MSA rows; 0 = none"),
    "data.train.max_templates": (0, "templates per example"),
    "data.train.max_seq_length": (1, "longest chain the converter keeps"),
    "data.train.max_distillation_msa": (1, "MSA sequences kept of a distillation example"),
    "train.num_steps": (0, "total optimisation steps"),
    "train.batch_size": (1, "examples per device per step"),
    "train.warmup_steps": (0, "warm-up steps; 0 = none"),
    "train.lr_decay_steps": (0, "steps before the learning-rate decay; 0 = never"),
    "train.max_recycle": (0, "largest recycling count sampled per step"),
    "train.checkpoint_every": (1, "steps between checkpoints"),
    "train.keep_checkpoints": (0, "newest checkpoints kept; 0 = all"),
    "train.log_every": (0, "steps between stdout lines; 0 = none"),
    "train.eval_every": (0, "steps between validations; 0 = none"),
    "train.loss_scale.scale_window": (1, "finite steps before the loss scale grows"),
    "chunking.auto_budget_mib": (1, "MiB per chunk's largest intermediate under the automatic rule"),
    "chunking.unchunked_mib": (0, "MiB below which an op's whole intermediate runs unchunked (automatic rule)"),
}
# keys that are a size or null (null: no limit), with their minimum
NULL_OR_INT_MINIMUMS = {
    "data.eval.crop_size": (1, "residues kept at inference; null = no crop"),
    "data.train.crop_size": (1, "residues per training crop; null = no crop"),
    "chunking.chunk_size": (0, "rows per inference chunk; 0 = off, null = automatic"),
}
# keys that are a probability or a fraction
FRACTIONS = ("data.common.masked_msa.profile_prob", "data.common.masked_msa.same_prob",
             "data.common.masked_msa.uniform_prob", "data.eval.masked_msa_replace_fraction",
             "data.train.masked_msa_replace_fraction", "data.train.spatial_crop_prob",
             "data.train.block_delete_msa.msa_fraction_per_block", "train.fape_clamp_prob", "train.ema_decay")


JIT_LEVELS = ("auto", "O0", "O1", "O2")


def check_config(cfg: ConfigDict) -> None:
    """Value checks a key-by-key type check cannot see (ranges, list contents, cross-field rules), done when the
    config is loaded so that a bad value is a one-line ConfigError naming the key before anything is built."""
    prec = cfg.precision.compute_dtype
    if prec not in ("float32", "float16", "bfloat16"):
        raise ConfigError(f"precision.compute_dtype must be float32, float16 or bfloat16, got {prec!r}")
    for key, (low, meaning) in INT_MINIMUMS.items():
        value = cfg.get_path(key)
        if not _int_at_least(value, low):
            raise ConfigError(f"{key} must be an integer >= {low} ({meaning}), got {value!r}")
    for key, (low, meaning) in NULL_OR_INT_MINIMUMS.items():
        value = cfg.get_path(key)
        if value is not None and not _int_at_least(value, low):
            raise ConfigError(f"{key} must be null or an integer >= {low} ({meaning}), got {value!r}")
    for key in FRACTIONS:
        value = cfg.get_path(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ConfigError(f"{key} must be a number in [0, 1], got {value!r}")
    ensemble = cfg.data.eval.num_ensemble
    if ensemble != 1:
        raise ConfigError(f"data.eval.num_ensemble must be 1: ensembling (num_ensemble={ensemble}) is not "
                          f"implemented (AlphaFold 2.3's monomer models use 1; CASP14 used 8)")
    tolerance = cfg.model.recycle_early_stop_tolerance
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise ConfigError(f"model.recycle_early_stop_tolerance must be a number >= 0 (Angstrom; 0 = off), "
                          f"got {tolerance!r}")
    if cfg.data.train.sampling not in ("weighted", "uniform"):
        raise ConfigError(f"data.train.sampling must be weighted or uniform, got {cfg.data.train.sampling!r}")
    if cfg.train.loss_scale.type not in ("dynamic", "fixed", "none"):
        raise ConfigError(f"train.loss_scale.type must be dynamic, fixed or none, got {cfg.train.loss_scale.type!r}")
    if cfg.runtime.jit_level not in JIT_LEVELS:
        raise ConfigError(f"runtime.jit_level must be one of {', '.join(JIT_LEVELS)}, got {cfg.runtime.jit_level!r}")
    if not (isinstance(cfg.runtime.native_kernels, bool) or cfg.runtime.native_kernels == "auto"):
        raise ConfigError(f"runtime.native_kernels must be auto, true or false, got {cfg.runtime.native_kernels!r}")
    buckets = cfg.buckets.num_res
    if (not isinstance(buckets, list) or not buckets or not all(_int_at_least(b, 1) for b in buckets)
            or any(a >= b for a, b in zip(buckets, buckets[1:]))):
        raise ConfigError(f"buckets.num_res must be a non-empty list of increasing positive integers (padded "
                          f"sequence lengths), got {buckets!r}")
    for mode in ("eval", "train"):
        section = cfg.data[mode]
        if cfg.data.common.reduce_msa_clusters_by_max_templates and \
                section.max_msa_clusters - section.max_templates < 1:
            raise ConfigError(f"data.{mode}.max_msa_clusters ({section.max_msa_clusters}) must exceed "
                              f"data.{mode}.max_templates ({section.max_templates}) when "
                              f"data.common.reduce_msa_clusters_by_max_templates is true")


def check_precision(cfg, device: str | None) -> None:
    """The compute dtype must have kernels on ``device``: bfloat16 has (almost) none on CPU in MindSpore 2.10.
    Called by every command that runs the network (train, predict, run-features) before anything is built."""
    if cfg.precision.compute_dtype == "bfloat16" and str(device).upper() == "CPU":
        raise ConfigError("precision.compute_dtype=bfloat16 is not supported on CPU (MindSpore has no bf16 CPU "
                          "kernels): use float32 (or float16 with loss scaling)")


def from_alphafold_config(af_config: dict, base_preset=None) -> ConfigDict:
    """Build a config from AlphaFold's resolved config dict (``data`` and ``model`` sections as AlphaFold has them)."""
    if "full_config" in af_config:
        af_config = af_config["full_config"]
    schema = base_config()
    cfg = copy.deepcopy(schema)
    if base_preset:
        _apply_preset(cfg, schema, base_preset)
    flat = ConfigDict({k: af_config[k] for k in ("data", "model") if k in af_config}).flatten()
    kept = {}
    for key, value in flat.items():
        home = next((k for k in UNSUPPORTED_KEYS if key == k or key.startswith(k + ".")), None)
        if home is not None:
            _check_unsupported(home, value, flat)
            continue
        kept[key] = value
    return apply_overrides(cfg, kept, schema, source="alphafold config")


def _check_unsupported(key: str, value, flat: dict) -> None:
    """An AlphaFold config's value of an UNSUPPORTED_KEYS key: fine when this implementation behaves as it says."""
    rule, reason = UNSUPPORTED_KEYS[key]
    if isinstance(rule, SameAs):
        if rule in flat and flat[rule] != value:
            raise ConfigError(f"alphafold config: '{key}' ({value!r}) differs from '{rule}' ({flat[rule]!r}): "
                              f"{reason}")
    elif rule is not None and not rule(value):
        raise ConfigError(f"alphafold config: '{key}' = {value!r} is not supported: {reason}")


def load_alphafold_config_file(path) -> ConfigDict:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    return from_alphafold_config(data)


def dump_config(cfg: ConfigDict) -> str:
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
