"""Bad-input corpus, weights and configs: checkpoints and .npz weights (convert-params, predict, run-features,
params-table, train), --set overrides, config yaml files, AlphaFold config.json. What every case asserts:
``bad_inputs.py``."""
from __future__ import annotations

import numpy as np
import pytest

from bad_inputs import Corpus, check_case, make_mindrecord, predict, raw_reference, relax, run_features, train
from helpers import reference_path, shared_path

corpus = Corpus()
case = corpus.case


# --------------------------------------------------------------------------------------- weights, checkpoints

TRUNCATED_CKPT = b"\n\x9a\x01\n\x10binary protob"      # the start of a protobuf, cut off

@case("convert-params-truncated-ckpt", "@w.ckpt", "not a readable MindSpore checkpoint")
def _(w):
    return ["convert-params", "--config", "tiny", w.bytes("w.ckpt", TRUNCATED_CKPT),
            w.path("back.npz")]


@case("convert-params-wrong-widths", "params.npz", "shape")
def _(w):
    return ["convert-params", "--config", "tiny", "--set", "model.heads.predicted_aligned_error.weight=0.1",
            reference_path("params.npz"), w.path("w.ckpt")]


@case("convert-params-input-directory", "@params_dir", "is a directory")
def _(w):
    return ["convert-params", "--config", "tiny", w.directory("params_dir"), w.path("w.ckpt")]


@case("convert-params-bad-output-suffix", "@w.bin", "output must end in .ckpt or .npz")
def _(w):
    return ["convert-params", "--config", "tiny", reference_path("params.npz"), w.path("w.bin")]


@case("convert-params-output-is-a-directory", "@out.ckpt", "directory")
def _(w):
    w.directory("out.ckpt")
    return ["convert-params", "--af-config", reference_path("config.json"), reference_path("params.npz"),
            w.path("out.ckpt")]


@case("convert-params-npz-of-integers", "@p.npz", "dtype")
def _(w):
    with np.load(reference_path("params.npz")) as f:
        ints = {k: f[k].astype(np.int32) for k in f.files}
    return ["convert-params", "--af-config", reference_path("config.json"), w.npz("p.npz", ints),
            w.path("w.ckpt")]


@case("predict-weights-directory", "@weights", "model 'tiny'", "directory")
def _(w):
    return predict(w, models=["--models", f"tiny={w.directory('weights')}"])


@case("predict-weights-truncated-ckpt", "@w.ckpt", "model 'tiny'", "not a readable MindSpore checkpoint")
def _(w):
    ckpt = w.bytes("w.ckpt", TRUNCATED_CKPT)
    return predict(w, models=["--models", f"tiny={ckpt}"])


@case("predict-weights-wrong-widths", "params.npz", "model 'tiny'", "shape(s) differ")
def _(w):
    return predict(w, models=["--models", f"tiny={reference_path('params.npz')}"])


@case("run-features-params-text", "@p.npz", "not a weights file: a text file")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--params", w.text("p.npz", "weights\n"))


@case("run-features-params-wrong-widths", "params.npz", "shape(s) differ")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--params", reference_path("params.npz"))


@case("run-features-params-missing", "@p.ckpt", "no such weights file")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--params", w.path("p.ckpt"))


@case("params-table-check-other-model", "params.npz", "shape(s) differ")
def _(w):
    return ["params-table", "--config", "tiny", "--check", reference_path("params.npz")]


@case("params-table-check-missing", "@m.json", "no such")
def _(w):
    return ["params-table", "--config", "tiny", "--check", w.path("m.json")]


@case("params-table-check-bad-json", "@m.json", "JSON")
def _(w):
    return ["params-table", "--config", "tiny", "--check", w.text("m.json", "{not json")]


@case("train-init-from-text", "@init.npz", "not a weights file: a text file")
def _(w):
    return train(w, "--init-from", w.text("init.npz", "weights\n"))


@case("train-resume-missing-checkpoint", "@missing.ckpt", "no such")
def _(w):
    return train(w, "--resume", w.path("missing.ckpt"))


# ----------------------------------------------------------------------------------------- config overrides

@case("set-without-equals", "model.num_recycle", "key.path=value")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--set", "model.num_recycle")


@case("set-unknown-key", "model.num_recycles", "unknown config key")
def _(w):
    return predict(w, "--set", "model.num_recycles=1")


@case("set-wrong-type", "model.num_recycle", "must be int")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--set", "model.num_recycle=three")


@case("set-out-of-range", "chunking.chunk_size must be")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--set", "chunking.chunk_size=-4")


@case("set-empty-list", "buckets.num_res must be")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--set", "buckets.num_res=[]")


@case("set-section-to-scalar", "model.heads", "is a section")
def _(w):
    return make_mindrecord(w, w.directory("feats"), "--set", "model.heads=1")


@case("set-bad-yaml-value", "buckets.num_res")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--set", "buckets.num_res=[8, 16")


@case("set-bfloat16-train-cpu", "precision.compute_dtype=bfloat16 is not supported on CPU")
def _(w):
    return train(w, "--set", "precision.compute_dtype=bfloat16")


@case("set-relax-unknown-platform", "relax.platform", "Metal")
def _(w):
    return relax(w, shared_path("data", "alphafold_testdata", "relax", "model_output.pdb"),
                 "--set", "relax.platform=Metal")


@case("relax-zero-outer-iterations", "relax.max_outer_iterations must be >= 1")
def _(w):
    return relax(w, shared_path("data", "alphafold_testdata", "relax", "model_output.pdb"),
                 "--max-outer-iterations", "0")


@case("relax-exclude-out-of-range", "relax.exclude_residues")
def _(w):
    return relax(w, shared_path("data", "alphafold_testdata", "relax", "model_output.pdb"),
                 "--set", "relax.exclude_residues=[9999]")


@case("config-yaml-missing", "@mine.yaml", "no such config file")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--config", w.path("mine.yaml"))


@case("config-yaml-invalid", "@mine.yaml", "not valid YAML")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--config",
                        w.text("mine.yaml", "model: {num_recycle: [1\n"))


@case("config-yaml-not-a-mapping", "@mine.yaml", "mapping")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--config", w.text("mine.yaml", "- 1\n- 2\n"))


@case("config-yaml-defaults-itself", "@mine.yaml", "includes itself")
def _(w):
    path = w.path("mine.yaml")
    w.text("mine.yaml", f"defaults: [{path}]\n")
    return run_features(w, reference_path("processed_features.npz"), "--config", path)


@case("af-config-missing", "@config.json", "no such file")
def _(w):
    return ["params-table", "--af-config", w.path("config.json")]


@case("af-config-invalid-json", "@config.json", "not valid JSON")
def _(w):
    return ["params-table", "--af-config", w.text("config.json", "{'model': 1}")]


@case("train-max-seq-length-negative", "--max-seq-length", "-5")
def _(w):
    w.npz("feats/s1.npz", raw_reference())
    return make_mindrecord(w, w.path("feats"), "--max-seq-length", "-5")


@pytest.mark.parametrize("name", sorted(corpus.cases))
def test_bad_input(name, tmp_path, capsys, monkeypatch):
    check_case(corpus.cases[name], tmp_path, capsys, monkeypatch)
