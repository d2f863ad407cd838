"""The config system: every preset loads and validates, unknown keys and bad types are named, overrides apply,
AlphaFold's own resolved config reproduces the fixture's settings."""
import json

import pytest

from helpers import reference_path
from mindsponge_fold.common.config import (UNSUPPORTED_KEYS, ConfigError, SameAs, available_presets, base_config,
                                           dump_config, from_alphafold_config, load_config)


@pytest.mark.parametrize("preset", available_presets())
def test_every_preset_loads(preset):
    cfg = load_config(preset)
    assert cfg.model.heads.structure_module.num_layer >= 1
    assert dump_config(cfg)          # serialisable


def test_monomer_presets_follow_alphafold_table():
    for m in range(1, 6):
        for ptm in ("", "_ptm"):
            cfg = load_config(f"model_{m}{ptm}")
            templates = m in (1, 2)
            assert cfg.model.embeddings_and_evoformer.template.enabled is templates
            assert cfg.model.embeddings_and_evoformer.template.embed_torsion_angles is templates
            assert cfg.data.common.use_templates is templates
            assert cfg.data.common.max_extra_msa == (5120 if m in (1, 3, 4) else 1024)
            assert cfg.model.heads.predicted_aligned_error.weight == (0.1 if ptm else 0.0)
            assert cfg.model.embeddings_and_evoformer.evoformer_num_block == 48


def test_unknown_key_and_wrong_type_are_named():
    with pytest.raises(ConfigError, match=r"unknown config key 'model\.heads\.distogram\.wieght'"
                                          r".*'model\.heads\.distogram\.weight'"):
        load_config("model_1", ["model.heads.distogram.wieght=1"])
    with pytest.raises(ConfigError, match=r"'model\.num_recycle' must be int"):
        load_config("model_1", ["model.num_recycle=three"])
    with pytest.raises(ConfigError, match="unknown config preset 'model_9'"):
        load_config("model_9")
    with pytest.raises(ConfigError, match="precision.compute_dtype"):
        load_config("tiny", ["precision.compute_dtype=float8"])


def test_preset_file_with_unknown_key_names_file_and_key(tmp_path):
    bad = tmp_path / "mine.yaml"
    bad.write_text("defaults: [tiny]\nmodel:\n  heads:\n    distogram: {num_binz: 3}\n")
    with pytest.raises(ConfigError) as e:
        load_config(str(bad))
    assert str(bad) in str(e.value) and "num_binz" in str(e.value)


def test_overrides_and_defaults_chain():
    cfg = load_config("tiny", ["model.num_recycle=0", "train.learning_rate=5e-4", "buckets.num_res=[8, 16]"])
    assert cfg.model.num_recycle == 0 and cfg.train.learning_rate == 5e-4 and cfg.buckets.num_res == [8, 16]
    assert cfg.data.common.use_templates is True            # inherited from model_1_ptm through `defaults`
    assert cfg.model.embeddings_and_evoformer.msa_channel == 16


def test_alphafold_full_config_reproduces_fixture_settings():
    raw = json.loads(reference_path("config.json").read_text())
    cfg = from_alphafold_config(raw)
    for key, value in raw["overrides"].items():
        if key.startswith("model.global_config.") and key.rsplit(".", 1)[1] in (
                "bfloat16", "bfloat16_output", "use_pallas", "fp8", "length_buckets"):
            continue                                         # kernel switches this implementation has no use for
        if key in UNSUPPORTED_KEYS:                          # read nowhere, or derived from the key holding it
            rule = UNSUPPORTED_KEYS[key][0]
            assert not isinstance(rule, SameAs) or cfg.get_path(rule) == value, key
            continue
        assert cfg.get_path(key) == value, key
    assert cfg.model.embeddings_and_evoformer.evoformer_num_block == 2
    assert cfg.model.heads.predicted_aligned_error.weight == 0.1
    with pytest.raises(ConfigError, match="unknown config key"):
        from_alphafold_config({"model": {"heads": {"new_head": {"weight": 1.0}}}})


@pytest.mark.parametrize("key", sorted(UNSUPPORTED_KEYS))
def test_inert_and_derived_keys_are_rejected_by_name(key):
    """AlphaFold keys this implementation reads nowhere (or derives from another key) are not settings: --set names
    the key and says why, in one line."""
    assert key not in base_config().flatten()
    with pytest.raises(ConfigError) as e:
        load_config("tiny", [f"{key}=1"])
    message = str(e.value)
    assert f"'{key}' is not a setting here: {UNSUPPORTED_KEYS[key][1]}" in message and "\n" not in message


def test_alphafold_config_values_of_inert_keys():
    """In an AlphaFold config such a key is dropped when this implementation behaves as its value says, else named."""
    base = json.loads(reference_path("config.json").read_text())["full_config"]
    from_alphafold_config(base)                      # the fixture's values: all accepted
    for section, key, value in (("model.global_config", "multimer_mode", True), ("model", "stop_at_score", 80.0),
                                ("model.heads.structure_module.fape", "clamp_type", "none"),
                                ("data.common", "num_recycle", 3)):
        cfg = json.loads(json.dumps(base))
        node = cfg
        for part in section.split("."):
            node = node[part]
        node[key] = value
        with pytest.raises(ConfigError, match=f"alphafold config: '{section}.{key}'"):
            from_alphafold_config(cfg)


# Every key of AlphaFold's resolved config (the fixture's full_config) that is not a setting of base.yaml, and what
# happens to it in an AlphaFold config: a value AlphaFold would act on differently from this implementation is an
# error naming the key ("value" below is one such value); None: any value is the same computation here (a kernel
# switch, a layout table or a derived key checked against its home). Keys in base.yaml work: test_alphafold_keys_in_
# base_are_taken_over and test_every_base_key_is_read_somewhere.
ALPHAFOLD_KEYS_NOT_IN_BASE = {
    "data.common.num_recycle": 5,                         # SameAs model.num_recycle
    "model.resample_msa_in_recycling": False,             # SameAs data.common.resample_msa_in_recycling
    "data.common.template_features": None,
    "data.common.unsupervised_features": None,
    "data.eval.feat": None,
    "data.eval.fixed_size": False,
    "model.global_config.subbatch_size": None,
    "model.embeddings_and_evoformer.evoformer.outer_product_mean.chunk_size": None,
    "model.embeddings_and_evoformer.template.subbatch_size": None,
    "model.global_config.multimer_mode": True,
    "model.global_config.bfloat16": True,
    "model.global_config.bfloat16_output": True,
    "model.global_config.fp8": True,
    "model.global_config.half_dtype": None,
    "model.global_config.compute_capability": None,
    "model.global_config.kernel_backend": None,
    "model.global_config.use_pallas": None,
    "model.global_config.length_buckets": None,
    "model.heads.structure_module.fape.clamp_type": "none",
    "model.stop_at_score": 80.0,
}


def _af_full_config():
    return json.loads(reference_path("config.json").read_text())["full_config"]


def _set(cfg: dict, dotted: str, value) -> dict:
    node = cfg
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return cfg


def test_every_alphafold_key_works_or_is_rejected_by_name():
    """The keys of AlphaFold's config outside base.yaml are exactly the list above (a new one fails here), each is a
    one-line error naming it when its value is one this implementation would not follow, and none is silently
    dropped otherwise (UNSUPPORTED_KEYS names a reason for each)."""
    from mindsponge_fold.common.config import ConfigDict
    full = _af_full_config()
    base = base_config().flatten()
    flat = ConfigDict({k: full[k] for k in ("data", "model")}).flatten()
    outside = {next((u for u in UNSUPPORTED_KEYS if k == u or k.startswith(u + ".")), k)
               for k in flat if k not in base}
    assert outside == set(ALPHAFOLD_KEYS_NOT_IN_BASE), outside ^ set(ALPHAFOLD_KEYS_NOT_IN_BASE)
    assert set(UNSUPPORTED_KEYS) == outside
    for key, value in ALPHAFOLD_KEYS_NOT_IN_BASE.items():
        if value is None:
            assert UNSUPPORTED_KEYS[key][0] is None or isinstance(UNSUPPORTED_KEYS[key][0], SameAs), key
            continue
        with pytest.raises(ConfigError) as e:
            from_alphafold_config(_set(_af_full_config(), key, value))
        assert f"alphafold config: '{key}'" in str(e.value) and "\n" not in str(e.value), (key, str(e.value))


def test_alphafold_keys_in_base_are_taken_over():
    """Each AlphaFold key that is a setting here takes the AlphaFold config's value (a changed value shows up)."""
    cfg = from_alphafold_config(_set(_set(_af_full_config(), "model.recycle_early_stop_tolerance", 0.5),
                                     "model.heads.distogram.num_bins", 32))
    assert cfg.model.recycle_early_stop_tolerance == 0.5 and cfg.model.heads.distogram.num_bins == 32


def test_ensembling_is_refused_when_the_config_is_loaded():
    """data.eval.num_ensemble > 1 (AlphaFold's CASP14 setting) used to be accepted and do nothing."""
    with pytest.raises(ConfigError) as e:
        load_config("tiny", ["data.eval.num_ensemble=8"])
    assert str(e.value) == ("data.eval.num_ensemble must be 1: ensembling (num_ensemble=8) is not implemented "
                            "(AlphaFold 2.3's monomer models use 1; CASP14 used 8)")
    with pytest.raises(ConfigError, match=r"ensembling \(num_ensemble=8\) is not implemented"):
        from_alphafold_config(_set(_af_full_config(), "data.eval.num_ensemble", 8))
    assert load_config("tiny", ["data.eval.num_ensemble=1"]).data.eval.num_ensemble == 1


def test_multimer_is_refused_by_name_and_eval_dropout_is_a_setting():
    key = "model.global_config.multimer_mode"
    with pytest.raises(ConfigError, match=f"'{key}' is not a setting here"):
        load_config("tiny", [f"{key}=true"])
    with pytest.raises(ConfigError, match="'model.global_config.multimer_mode' = True is not supported: multimer"):
        from_alphafold_config(_set(_af_full_config(), key, True))
    # eval_dropout (AlphaFold 2.3 / ColabFold's use_dropout): off by default, settable, taken from AlphaFold configs
    assert load_config("tiny").model.global_config.eval_dropout is False
    assert load_config("tiny", ["model.global_config.eval_dropout=true"]).model.global_config.eval_dropout is True
    af = from_alphafold_config(_set(_af_full_config(), "model.global_config.eval_dropout", True))
    assert af.model.global_config.eval_dropout is True


def test_early_stop_tolerance_is_a_setting():
    assert load_config("tiny").model.recycle_early_stop_tolerance == 0.0
    assert load_config("tiny", ["model.recycle_early_stop_tolerance=0.5"]).model.recycle_early_stop_tolerance == 0.5
    with pytest.raises(ConfigError, match=r"^model.recycle_early_stop_tolerance must be a number >= 0"):
        load_config("tiny", ["model.recycle_early_stop_tolerance=-1"])


def test_recycling_count_has_one_home():
    """The inference feature pipeline makes model.num_recycle + 1 batches (data.common.num_recycle is gone)."""
    from mindsponge_fold.data.rng import NumpyRNG
    from mindsponge_fold.data.transforms import process_features
    import numpy as np
    with np.load(reference_path("raw_features.npz")) as f:
        raw = {k: f[k] for k in f.files}
    for n in (0, 2):
        out = process_features(raw, load_config("tiny", [f"model.num_recycle={n}"]), "eval", NumpyRNG(0))
        assert out["msa_feat"].shape[0] == n + 1
    one = process_features(raw, load_config("tiny", ["model.num_recycle=2",
                                                     "data.common.resample_msa_in_recycling=false"]), "eval")
    assert one["msa_feat"].shape[0] == 1


def test_every_base_key_is_read_somewhere():
    """Each key's name occurs in the package's code (outside the config loader): a key added to base.yaml but read
    nowhere fails here."""
    import ast
    from code_graph import python_files
    names = set()
    for path in python_files("mindsponge_fold"):
        if path.name == "config.py" and path.parent.name == "common":
            continue
        for n in ast.walk(ast.parse(path.read_text())):
            names.add(getattr(n, "id", None) or getattr(n, "attr", None) or getattr(n, "arg", None)
                      or (n.value if isinstance(n, ast.Constant) and isinstance(n.value, str) else None))
    unread = [k for k in base_config().flatten() if k.rsplit(".", 1)[-1] not in names]
    assert not unread, unread


@pytest.mark.parametrize("override,key", [
    ("train.checkpoint_every=0", "train.checkpoint_every"),              # was a ZeroDivisionError in the loop
    ("data.eval.max_msa_clusters=-1", "data.eval.max_msa_clusters"),
    ("data.train.max_msa_clusters=0", "data.train.max_msa_clusters"),
    ("data.common.max_extra_msa=-2", "data.common.max_extra_msa"),
    ("data.eval.max_templates=-1", "data.eval.max_templates"),
    ("data.eval.num_ensemble=0", "data.eval.num_ensemble"),
    ("data.train.crop_size=0", "data.train.crop_size"),
    ("buckets.num_res=[]", "buckets.num_res"),
    ("buckets.num_res=[64, 32]", "buckets.num_res"),
    ("buckets.num_res=[0, 32]", "buckets.num_res"),
    ("chunking.chunk_size=-4", "chunking.chunk_size"),
    ("chunking.chunk_size=abc", "chunking.chunk_size"),
    ("model.num_recycle=-1", "model.num_recycle"),
    ("train.max_recycle=-1", "train.max_recycle"),
    ("train.batch_size=0", "train.batch_size"),
    ("train.fape_clamp_prob=1.5", "train.fape_clamp_prob"),
    ("train.loss_scale.type=auto", "train.loss_scale.type"),
])
def test_bad_values_are_named_when_the_config_is_loaded(override, key):
    """Value checks happen at load time (before anything is built or compiled): one line naming the key."""
    with pytest.raises(ConfigError) as e:
        load_config("tiny", [override])
    message = str(e.value)
    assert message.startswith(key + " must be") and "\n" not in message, message


def test_value_checks_apply_to_alphafold_configs_with_overrides_and_allow_the_boundaries():
    from mindsponge_fold.common.config import apply_overrides
    cfg = from_alphafold_config(json.loads(reference_path("config.json").read_text()))
    with pytest.raises(ConfigError, match=r"^train\.checkpoint_every must be an integer >= 1"):
        apply_overrides(cfg, ["train.checkpoint_every=0"])
    ok = load_config("tiny", ["chunking.chunk_size=0", "data.common.max_extra_msa=0", "model.num_recycle=0",
                              "data.eval.max_templates=0", "train.eval_every=0", "buckets.num_res=[8]"])
    assert ok.chunking.chunk_size == 0 and ok.buckets.num_res == [8]


def test_bfloat16_is_refused_on_cpu_only():
    from mindsponge_fold.common.config import check_precision
    cfg = load_config("tiny", ["precision.compute_dtype=bfloat16"])
    with pytest.raises(ConfigError, match=r"^precision\.compute_dtype=bfloat16 is not supported on CPU"):
        check_precision(cfg, "CPU")
    check_precision(cfg, "Ascend")
    check_precision(load_config("tiny"), "CPU")
