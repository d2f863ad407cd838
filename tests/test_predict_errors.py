"""``predict`` on bad input: one-line error, exit status 2, nothing written. Plus the pieces that need no model run:
target parsing, single-sequence features, ranking and ranked files, the atomic target directory."""
import json
import os
import re

import numpy as np
import pytest

from helpers import reference_path, shared_path
from mindsponge_fold.cli import main
from mindsponge_fold.common.errors import InputError

SEQ = "GSSGSSGMEGPLNLAHQQSRRADRLLAAGKYEEAISCHRKATTYLSEAMKLTESEQAHLSLELQRDSHMKQLLLIQERWKRAKREERLKAHSGPSSG"


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "q.fasta").write_text(f">2crb_A\n{SEQ}\n")
    aln = tmp_path / "aln" / "2crb_A"
    aln.mkdir(parents=True)
    (aln / "bfd_uniclust_hits.a3m").write_text(f">query\n{SEQ}\n>hit\n{SEQ[:-3]}---\n")
    return tmp_path


def fails(capsys, tmp_path, argv, *needles):
    out = tmp_path / "out"
    status = main(["predict", "--output-dir", str(out)] + argv)
    lines = capsys.readouterr().err.strip().splitlines()
    err = [line for line in lines if not line.startswith("predict: ")]     # progress lines aside
    assert status == 2
    assert len(err) == 1 and err[0].startswith("mindsponge-fold predict: error:"), lines
    for needle in needles:
        assert needle in err[0], err[0]
    assert not out.exists() or not os.listdir(out)       # nothing (half-)written
    return err[0]


def base(w, fasta="q.fasta", models=("--models", "tiny", "--random-weights")):
    return ["--fasta", str(w / fasta), "--alignments-dir", str(w / "aln"), "--models-to-relax", "none", *models]


def test_unknown_residue_letter(capsys, workdir):
    (workdir / "b.fasta").write_text(f">2crb_A\n{SEQ[:10]}B{SEQ[11:]}\n")
    fails(capsys, workdir, base(workdir, "b.fasta"), "b.fasta", "'B' at position 11", "--allow-unknown")


def test_non_letter_in_sequence(capsys, workdir):
    (workdir / "b.fasta").write_text(f">2crb_A\n{SEQ[:10]}*{SEQ[11:]}\n")
    fails(capsys, workdir, base(workdir, "b.fasta"), "b.fasta:2", "'*'")


def test_empty_sequence(capsys, workdir):
    (workdir / "e.fasta").write_text(f">2crb_A\n{SEQ}\n>empty\n\n")
    fails(capsys, workdir, base(workdir, "e.fasta"), "e.fasta", "no residues")


def test_over_long_sequence(capsys, workdir):
    fails(capsys, workdir, base(workdir) + ["--max-length", "50"], "97 residues", "maximum length 50")


def test_over_long_for_the_config_buckets(capsys, workdir):
    long_seq = "A" * 300                                  # tiny's largest length bucket is 256
    (workdir / "l.fasta").write_text(f">long\n{long_seq}\n")
    fails(capsys, workdir, base(workdir, "l.fasta"), "300 residues", "maximum length 256")


def test_missing_weights_file(capsys, workdir):
    argv = base(workdir, models=["--models", f"tiny={workdir / 'nope.npz'}"])
    fails(capsys, workdir, argv, "nope.npz", "model 'tiny'", "no such weights file")


def test_no_weights_without_random_weights(capsys, workdir):
    argv = base(workdir, models=["--models", "tiny"])
    fails(capsys, workdir, argv, "model 'tiny': no weights", "--random-weights")


def test_weights_of_another_model(capsys, workdir):
    from mindsponge_fold.common.config import load_config
    from mindsponge_fold.common.fileio import save_npz
    from mindsponge_fold.predict.models import random_alphafold_params
    no_pae = load_config("tiny", ["model.heads.predicted_aligned_error.weight=0"])   # a non-ptm tiny model
    weights = workdir / "params_no_pae.npz"
    save_npz(weights, random_alphafold_params(no_pae))
    argv = base(workdir, models=["--models", f"tiny={weights}"])
    fails(capsys, workdir, argv, "params_no_pae.npz", "weights do not fit", "PAE head")


def test_unknown_model_preset(capsys, workdir):
    argv = base(workdir, models=["--models", "my_model", "--random-weights"])
    fails(capsys, workdir, argv, "model 'my_model'", "--preset")


def test_missing_search_binary(capsys, workdir, monkeypatch, tmp_path):
    db = tmp_path / "db.fasta"
    db.write_text(f">x\n{SEQ}\n")
    (tmp_path / "empty_path").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty_path"))
    fails(capsys, workdir, base(workdir) + ["--uniref90-database", str(db)], "jackhmmer", "not found")


def test_missing_database(capsys, workdir):
    fails(capsys, workdir, base(workdir) + ["--uniref90-database", str(workdir / "nodb.fasta")],
          "nodb.fasta", "not found")


def test_no_alignments_and_no_search(capsys, workdir):
    (workdir / "other.fasta").write_text(f">other\n{SEQ}\n>second\n{SEQ}\n")
    fails(capsys, workdir, base(workdir, "other.fasta"), "no alignments for target 'other'", "--single-sequence")


def test_duplicate_target_names(capsys, workdir):
    (workdir / "d.fasta").write_text(f">x one\n{SEQ}\n>x two\n{SEQ}\n")
    fails(capsys, workdir, base(workdir, "d.fasta"), "two targets are named 'x'")


def test_unfinished_target_directory_is_not_overwritten(capsys, workdir):
    (workdir / "out" / "2crb_A").mkdir(parents=True)
    status = main(["predict", "--output-dir", str(workdir / "out")] + base(workdir))
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and "not a finished prediction" in err[0]
    assert os.listdir(workdir / "out" / "2crb_A") == []


def test_ptm_ranking_needs_ptm_models(capsys, workdir):
    no_pae = ["--set", "model.heads.predicted_aligned_error.weight=0"]
    fails(capsys, workdir, base(workdir) + ["--rank-by", "ptm", *no_pae],
          "--rank-by ptm", "model 'tiny'")


# ---------------------------------------------------------------------------------------------- pieces, no model run

def test_fasta_targets_and_alignment_lookup(tmp_path):
    from mindsponge_fold.predict import inputs
    fasta = tmp_path / "t.fasta"
    fasta.write_text(f">sp|P1|a first\n{SEQ}\n>b/2 second\nACDE\n")
    targets = inputs.read_fasta_targets([fasta])
    assert [t.name for t in targets] == ["sp_P1_a", "b_2"]
    assert [len(t.sequence) for t in targets] == [97, 4]
    (tmp_path / "aln" / "b_2").mkdir(parents=True)
    assert inputs.alignment_dir_for(targets[1], tmp_path / "aln", False) == tmp_path / "aln" / "b_2"
    assert inputs.alignment_dir_for(targets[0], tmp_path / "aln", False) is None
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "uniref90_hits.sto").write_text("")
    assert inputs.alignment_dir_for(targets[0], tmp_path / "flat", True) == tmp_path / "flat"
    assert inputs.alignment_dir_for(targets[0], tmp_path / "flat", False) is None
    fasta.write_text(">u\nACXD\n")
    with pytest.raises(InputError, match="'X' at position 3"):
        inputs.read_fasta_targets([fasta])
    assert inputs.read_fasta_targets([fasta], allow_unknown=True)[0].sequence == "ACXD"


def test_single_sequence_features_are_valid_raw_features():
    from mindsponge_fold.common.config import load_config
    from mindsponge_fold.data import feature_shapes as fs
    from mindsponge_fold.predict.features import single_sequence_features
    from mindsponge_fold.data.transforms import process_features
    raw = single_sequence_features(SEQ, "q")
    fs.validate(raw, spec=fs.RAW_FEATURES)
    assert raw["msa"].shape == (1, 97) and raw["template_aatype"].shape[0] == 0
    processed = process_features(raw, load_config("tiny"))
    assert processed["msa_feat"].shape[1] >= 1 and processed["aatype"].shape[-1] == 97


def test_single_sequence_mode_from_fasta_with_shared_alignments_dir(tmp_path):
    """Real alignments for one target, single-sequence for the other (no alignments)."""
    from mindsponge_fold.predict import features, inputs
    from mindsponge_fold.predict.settings import FeatureSettings
    src = shared_path("data", "openfold_testdata", "alignments", "2crb_A")
    (tmp_path / "aln").mkdir()
    os.symlink(src, tmp_path / "aln" / "2crb_A")
    builder = features.FeatureBuilder(FeatureSettings(alignments_dir=str(tmp_path / "aln"), single_sequence=True))
    builder.num_targets = 2
    with_msa = builder.raw_features(inputs.Target("2crb_A", SEQ, "2crb_A", "x"), tmp_path)
    alone = builder.raw_features(inputs.Target("other", SEQ, "other", "x"), tmp_path)
    assert with_msa["msa"].shape[0] == 868 and alone["msa"].shape[0] == 1
    assert sorted(os.listdir(tmp_path)) == ["aln"]      # precomputed alignments read in place, nothing written


def test_ranking_and_ranked_files(tmp_path):
    from mindsponge_fold.common import protein
    from mindsponge_fold.predict import outputs
    scores = {"model_1": 71.0, "model_2": 80.5, "model_3": 65.0}
    order = outputs.rank(scores)
    assert order == ["model_2", "model_1", "model_3"]
    n = 3
    pos = np.zeros((n, 37, 3), np.float32)
    pos[:, 1, 0] = np.arange(n) * 3.8
    mask = np.zeros((n, 37), np.float32)
    mask[:, 1] = 1
    prots = {m: protein.from_prediction(np.zeros(n, int), pos + i, mask, plddt=np.full(n, 10.0 * (i + 1)))
             for i, m in enumerate(scores)}
    (tmp_path / "relaxed_model_2.pdb").write_text("RELAXED PDB\n")
    (tmp_path / "relaxed_model_2.cif").write_text("RELAXED CIF\n")
    outputs.write_ranked(tmp_path, order, prots, {"model_2": None})
    assert (tmp_path / "ranked_0.pdb").read_text() == "RELAXED PDB\n"
    assert (tmp_path / "ranked_0.cif").read_text() == "RELAXED CIF\n"
    assert (tmp_path / "ranked_1.pdb").read_text() == protein.to_pdb(prots["model_1"])
    assert (tmp_path / "ranked_2.pdb").read_text() == protein.to_pdb(prots["model_3"])
    outputs.write_summary(tmp_path, scores, order, "plddt", {}, {"features": 1.0})
    assert json.loads((tmp_path / "ranking_debug.json").read_text()) == {"plddts": scores, "order": order}
    assert outputs.ranking_confidence({"confidence/plddt": np.array([50.0, 70.0]), "confidence/ptm": 0.3},
                                      "plddt") == 60.0
    assert outputs.ranking_confidence({"confidence/ptm": np.float64(0.3)}, "ptm") == 0.3


def test_target_directory_is_atomic(tmp_path):
    from mindsponge_fold.predict import outputs
    with pytest.raises(RuntimeError):
        with outputs.target_directory(tmp_path, "t") as work:
            (work / "half.pdb").write_text("x")
            raise RuntimeError("crash mid-target")
    assert os.listdir(tmp_path) == []
    with outputs.target_directory(tmp_path, "t") as work:
        (work / "ranking_debug.json").write_text('{"order": ["m"]}')
        assert not (tmp_path / "t").exists()
    assert os.listdir(tmp_path) == ["t"] and outputs.finished_models(tmp_path, "t") is not None
    assert outputs.finished_models(tmp_path, "t") == ["m"]
    stale = tmp_path / ".t.partial-999999999"       # left by a dead run
    stale.mkdir()
    assert outputs.earlier_outputs(tmp_path, "t") == [stale, tmp_path / "t"]
    with outputs.target_directory(tmp_path, "t") as work:
        (work / "ranking_debug.json").write_text('{"order": ["new"]}')
    assert sorted(os.listdir(tmp_path)) == ["t"]                 # the dead run's directory removed after success
    assert outputs.finished_models(tmp_path, "t") == ["new"]
    with pytest.raises(RuntimeError):                           # a finished model inside: kept for a rerun
        with outputs.target_directory(tmp_path, "t") as work:
            (work / "result_m.npz").write_bytes(b"")
            raise RuntimeError("crash after model m")
    assert len(os.listdir(tmp_path)) == 2 and (work / "result_m.npz").is_file()


def test_random_weights_are_seeded_and_non_zero():
    from mindsponge_fold.common.config import load_config
    from mindsponge_fold.predict.models import random_alphafold_params
    cfg = load_config("tiny")
    a, b, c = (random_alphafold_params(cfg, s) for s in (1, 1, 2))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)
    assert all(np.abs(v).max() > 0 for v in a.values())        # no all-zero ('final' init) layer left
    assert all(k.startswith("alphafold/alphafold_iteration/") and "//" in k for k in a)


def test_features_file_targets():
    from helpers import reference_path
    from mindsponge_fold.predict import inputs
    raw = inputs.read_features_target(reference_path("raw_features.npz"))
    processed = inputs.read_features_target(reference_path("processed_features.npz"), name="fixture")
    assert raw.sequence == processed.sequence == SEQ
    assert not raw.processed and processed.processed and processed.name == "fixture"
    assert inputs.read_features_target(reference_path("processed_features.npz")).name == "processed_features"
    with pytest.raises(InputError, match="maximum length 90"):
        inputs.read_features_target(reference_path("raw_features.npz"), max_length=90)


class FakeRunner:
    """Stands in for ModelRunner: outputs of the right names and shapes, pLDDT set per model."""

    def __init__(self, plddt, weights_id, num_recycles=3):
        self.plddt = plddt
        self.weights_id = weights_id      # the model whose weights it holds (shared runners reload otherwise)
        self.num_recycles = num_recycles
        self.seeds = []                   # the seed of each run (dropout seed with eval_dropout)

    def run(self, features, source=None, on_iteration=None, seed=0):
        self.seeds.append(seed)
        n = features["aatype"].shape[-1]
        pos = np.zeros((n, 37, 3), np.float32)
        pos[:, :, 0] = np.arange(n)[:, None] * 3.8
        pos[:, :, 1] = np.arange(37)[None] * 0.1
        mask = features["atom37_atom_exists"][0].astype(np.float32)
        on_iteration(0, 0)
        return ({"structure_module/final_atom_positions": pos, "structure_module/final_atom_mask": mask,
                 "confidence/plddt": np.full(n, self.plddt), "distogram/logits": np.zeros((n, n, 64), np.float32),
                 "distogram/bin_edges": np.linspace(2.3125, 21.6875, 63).astype(np.float32),
                 "num_recycles": np.asarray(self.num_recycles, np.int32)},
                {"iterations_s": [0.5], "first_call_s": 0.5})


def test_orchestration_ranking_and_a_failed_relax_without_a_network(tmp_path, monkeypatch, capsys):
    """predict_target with stand-in runners: ranked files follow the pLDDT order, relax 'all' with one failure keeps
    that model unrelaxed (recorded in relax_metrics.json) instead of discarding the target; the recycling iterations
    each model ran are in ranking_debug.json, and an early stop is said."""
    import argparse
    from mindsponge_fold.commands import predict as command
    from mindsponge_fold.predict import features, inputs, models, outputs
    from mindsponge_fold.predict.run import predict_target
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    settings = command.settings_from_args(parser.parse_args([
        "--fasta", "x", "--output-dir", str(tmp_path), "--single-sequence", "--preset", "tiny",
        "--models", "low,high", "--random-weights", "--models-to-relax", "all", "--plots", "--num-recycle", "3",
        "--set", "model.recycle_early_stop_tolerance=0.5"]))
    specs = models.resolve_models(settings.models)
    for spec, plddt, recycles in zip(specs, (40.0, 80.0), (1, 3)):
        spec.runner = FakeRunner(plddt, spec.name, recycles)

    def fake_relax(directory, name, prot, cfg):
        if name == "high":
            raise RuntimeError("Particle coordinate is NaN.\nmore text")
        (directory / f"relaxed_{name}.pdb").write_text("RELAXED\n")
        (directory / f"relaxed_{name}.cif").write_text("RELAXED CIF\n")
        return prot, {"violations_before": 3, "violations_after": 0}

    monkeypatch.setattr(outputs, "relax_model", fake_relax)
    target = inputs.Target("t", "ACDEFGHIKL", "t", "x")
    builder = features.FeatureBuilder(settings.inputs)
    with outputs.target_directory(tmp_path, "t") as work:
        summary = predict_target(target, specs, builder, work, settings, "plddt")
    d = tmp_path / "t"
    assert summary["order"] == ["high", "low"]
    assert [s.runner.seeds for s in specs] == [[0], [1]]             # model i runs with seed i + seed * num_models
    assert json.loads((d / "ranking_debug.json").read_text()) == {"plddts": {"low": 40.0, "high": 80.0},
                                                                  "order": ["high", "low"],
                                                                  "num_recycles": {"low": 1, "high": 3}}
    err = capsys.readouterr().err
    assert "t low: recycling stopped early after 1 of 3 recycles (CA distance change <= " \
           "model.recycle_early_stop_tolerance 0.5)" in err and "t high: recycling stopped" not in err
    assert "ATOM" in (d / "ranked_0.pdb").read_text()                # 'high': relax failed -> unrelaxed
    assert (d / "ranked_1.pdb").read_text() == "RELAXED\n"          # 'low': relaxed
    metrics = json.loads((d / "relax_metrics.json").read_text())
    assert metrics["high"] == {"error": "RuntimeError: Particle coordinate is NaN."}
    assert metrics["low"]["remaining_violations_count"] == 0
    timings = json.loads((d / "timings.json").read_text())
    assert {"relax_low", "relax_high", "compile_low", "predict_high"} <= set(timings)
    assert sorted(os.listdir(d / "plots")) == ["contacts_high.png", "contacts_low.png", "plddt.png"]
    assert not (d / "pae_low.json").exists()                          # no PAE output -> no PAE file


def test_models_with_one_config_share_one_runner_and_swap_weights(tmp_path):
    """Two models of the same config build (and compile) one network; run_model runs each with its own weights."""
    import argparse
    from mindsponge_fold.model.params import export_alphafold_params
    from mindsponge_fold.commands import predict as command
    from mindsponge_fold.predict import models
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    settings = command.settings_from_args(parser.parse_args([
        "--fasta", "x", "--output-dir", str(tmp_path), "--single-sequence", "--preset", "tiny",
        "--models", "a,b", "--random-weights"]))
    specs = models.resolve_models(settings.models)
    shared = {}
    for spec in specs:
        spec.runner = models.load_runner(spec, settings.models, shared)
    runner = specs[0].runner
    assert specs[1].runner is runner and len(shared) == 1
    key = "alphafold/alphafold_iteration/structure_module/initial_projection//weights"
    runner.run = lambda features, source=None, on_iteration=None, seed=0: (
        {"w": export_alphafold_params(runner.model)[key]}, {"iterations_s": [0.0]})
    for spec in specs + specs[::-1]:
        out, _ = models.run_model(spec, {})
        np.testing.assert_array_equal(out["w"], spec.weights_source[key])
    assert not np.array_equal(specs[0].weights_source[key], specs[1].weights_source[key])


def test_features_with_too_few_recycling_iterations_are_refused(tmp_path, capsys):
    """Features resampled per iteration (2 batches) cannot feed 4 iterations: one-line error instead of silently
    reusing the last batch."""
    out = tmp_path / "o.npz"
    status = main(["run-features", "--features", str(reference_path("processed_features.npz")), "--config", "tiny",
                   "--num-recycle", "3", "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1, err
    assert "the features hold 2 recycling iterations, 4 needed for num_recycle=3" in err[0]
    assert "processed_features.npz" in err[0] and not out.exists()


# ------------------------------------------------------------- checked before any model loads (issue 17, part A)

def test_config_value_errors_name_the_key_not_the_fasta(capsys, workdir):
    """--set model.num_recycle=-1 used to fail after the model loaded, naming the FASTA file."""
    err = fails(capsys, workdir, base(workdir) + ["--set", "model.num_recycle=-1"],
                "model.num_recycle must be an integer >= 0", "got -1")
    assert "q.fasta" not in err
    fails(capsys, workdir, base(workdir) + ["--set", "buckets.num_res=[]"], "buckets.num_res must be")


def test_bfloat16_on_cpu_is_refused_before_the_model_is_built(capsys, workdir):
    fails(capsys, workdir, base(workdir) + ["--device", "CPU", "--set", "precision.compute_dtype=bfloat16"],
          "precision.compute_dtype=bfloat16 is not supported on CPU")


def test_a_file_that_is_not_weights_says_what_it_is(capsys, workdir):
    (workdir / "random.npz").write_bytes(np.random.default_rng(0).bytes(4096))
    argv = base(workdir, models=["--models", f"tiny={workdir / 'random.npz'}"])
    err = fails(capsys, workdir, argv, "random.npz", "model 'tiny'", "binary data of unknown format, named .npz but "
                "not a zip archive", "expected AlphaFold parameters (.npz")
    assert "MindSpore checkpoint (.ckpt)" in err and "not a readable MindSpore checkpoint" not in err


def test_weights_file_kinds(tmp_path):
    import io
    from mindsponge_fold.model import params as P
    arr = io.BytesIO()
    np.save(arr, np.zeros(3))
    cases = {"empty.npz": (b"", "an empty file"), "array.npz": (arr.getvalue(), "a single numpy array (.npy)"),
             "notes.bin": (b"weights of model 1\n", "a text file"), "data.pkl": (b"\x80\x04\x95", "a Python pickle")}
    for name, (content, what) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InputError, match=rf"not a weights file: {re.escape(what)}.*expected AlphaFold parameters"):
            P.weights_format(tmp_path / name)
    (tmp_path / "w.ckpt").write_bytes(b"\n\x9a\x01\n\x10binary protobuf")
    assert P.weights_format(tmp_path / "w.ckpt") == "ckpt"
    np.savez(tmp_path / "other.npz", a=np.zeros(2), b=np.ones(3))     # a real .npz, but not AlphaFold parameters
    assert P.weights_format(tmp_path / "other.npz") == "npz"
    with pytest.raises(InputError, match=r"not AlphaFold parameters: an \.npz of 2 array\(s\) \(first: 'a'\), none "
                                         r"named alphafold/alphafold_iteration/"):
        P.load_npz_arrays(tmp_path / "other.npz")


def _features_argv(path):
    return ["--features", str(path), "--models-to-relax", "none", "--models", "tiny", "--random-weights"]


def test_features_file_with_missing_features(capsys, tmp_path):
    """predict --features used to die with KeyError: 'msa' (raw) or inside MindSpore (processed)."""
    with np.load(reference_path("raw_features.npz")) as f:
        raw = {k: f[k] for k in f.files if k not in ("msa", "deletion_matrix_int")}
    np.savez(tmp_path / "raw_part.npz", **raw)
    fails(capsys, tmp_path, _features_argv(tmp_path / "raw_part.npz"), "raw_part.npz",
          "missing feature(s): msa, deletion_matrix_int")
    with np.load(reference_path("processed_features.npz")) as f:
        processed = {k: f[k] for k in f.files if k not in ("extra_msa", "template_mask")}
    np.savez(tmp_path / "processed_part.npz", **processed)
    fails(capsys, tmp_path, _features_argv(tmp_path / "processed_part.npz"), "processed_part.npz", "model 'tiny'",
          "2 feature(s) missing: extra_msa, template_mask")
    np.savez(tmp_path / "outputs.npz", plddt=np.zeros(3))
    fails(capsys, tmp_path, _features_argv(tmp_path / "outputs.npz"), "outputs.npz", "not a features file")


def test_run_features_on_a_file_that_is_not_processed_features(tmp_path, capsys):
    """Processed features without the template inputs a template model reads (e.g. a model_3 file given to model_1)
    used to fail inside MindSpore's compile: a long trace and rank_0/om/analyze_fail.ir in the working directory.
    Now one line naming the file and the missing features, before the network is built."""
    out = tmp_path / "o.npz"
    with np.load(reference_path("processed_features.npz")) as f:
        no_templates = {k: f[k] for k in f.files if not k.startswith("template_")}
    features = tmp_path / "no_templates.npz"
    np.savez(features, **no_templates)

    def run(path, *extra):
        status = main(["run-features", "--features", str(path), "--config", "tiny", "--device", "CPU",
                       "--out", str(out), *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(err) == 1, err
        return err[0]

    err = run(features)
    assert f"{features}: not processed features for this model (the network's input): 6 feature(s) missing: " \
           "template_aatype, template_all_atom_positions" in err
    assert not out.exists() and not (tmp_path / "rank_0").exists()        # the tests run in tmp_path
    gt = reference_path("ground_truth.npz")
    assert f"{gt}: not processed features: no 'aatype'" in run(gt)
    err = run(reference_path("processed_features.npz"), "--set", "precision.compute_dtype=bfloat16")
    assert "precision.compute_dtype=bfloat16 is not supported on CPU" in err


def test_alignments_of_every_target_are_parsed_before_any_model_loads(capsys, workdir):
    """A malformed a3m of target 2 (or an MSA of another protein) used to stop the run after target 1."""
    second = "MKVLAAGIVGLLLAQ" * 3
    (workdir / "two.fasta").write_text(f">2crb_A\n{SEQ}\n>second\n{second}\n")
    bad = workdir / "aln" / "second" / "bfd_uniclust_hits.a3m"
    bad.parent.mkdir()
    bad.write_text(f">second\n{second}\n>hit\n{second[:-5]}\n")
    argv = base(workdir, "two.fasta")
    out = workdir / "out"
    status = main(["predict", "--output-dir", str(out)] + argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and not any("loading model" in line for line in lines), lines
    errors = [line for line in lines if not line.startswith("predict: ")]
    assert len(errors) == 1 and f"{bad}:3: row 'hit' has 40 aligned columns but the query has 45" in errors[0], lines
    assert not out.exists() or not os.listdir(out)
    bad.write_text(f">other\n{SEQ[:45]}\n>hit\n{second}\n")
    fails(capsys, workdir, argv, str(bad), "the first row ('other') is not the query sequence of",
          "(target 'second')")


# ------------------------------------------------------------------ run record and per-model resume (issue 15 C)

class CountingRunner(FakeRunner):
    """A FakeRunner that notes each model it runs, and can stop the run (as Ctrl-C would) at one model."""

    def __init__(self, plddt, weights_id, calls, interrupt=False):
        super().__init__(plddt, weights_id)
        self.calls, self.interrupt = calls, interrupt

    def run(self, features, source=None, on_iteration=None, seed=0):
        if self.interrupt:
            raise KeyboardInterrupt
        self.calls.append(self.weights_id)
        return super().run(features, source, on_iteration, seed)


def _predict_with_fake_runners(tmp_path, monkeypatch, models_arg, *extra, interrupt=None):
    """predict() on one single-sequence target with stand-in runners; returns the models that ran."""
    import argparse
    from mindsponge_fold.commands import predict as command
    from mindsponge_fold.predict import models
    from mindsponge_fold.predict.run import predict
    (tmp_path / "t.fasta").write_text(f">t\n{SEQ[:20]}\n")
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    args = parser.parse_args(["--fasta", str(tmp_path / "t.fasta"), "--output-dir", str(tmp_path / "out"),
                              "--single-sequence", "--preset", "tiny", "--models", models_arg, "--random-weights",
                              "--models-to-relax", "none", *extra])
    args.command_line = ["mindsponge-fold", "predict", "--models", models_arg, *extra]
    calls = []
    plddts = {"low": 40.0, "high": 80.0, "mid": 60.0}
    monkeypatch.setattr(models, "load_runner", lambda spec, settings, shared: CountingRunner(
        plddts[spec.name], spec.name, calls, interrupt=spec.name == interrupt))
    predict(command.settings_from_args(args))
    return calls


def test_a_stopped_run_is_resumed_per_model(tmp_path, monkeypatch, capsys):
    """Ctrl-C during model 'high' keeps the finished model 'low' (hidden, beside the target directory); the rerun
    says it reuses 'low' and runs only 'high'."""
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        _predict_with_fake_runners(tmp_path, monkeypatch, "low,high", interrupt="high")
    partial = [p for p in os.listdir(out) if p.startswith(".t.partial-")]
    assert len(partial) == 1 and not (out / "t").exists()
    assert {"result_low.npz", "unrelaxed_low.pdb", "run.json", "config.yaml"} <= set(os.listdir(out / partial[0]))
    assert "t: stopped; the finished model(s) low are kept in" in capsys.readouterr().err
    before = (out / partial[0] / "result_low.npz").read_bytes()
    assert _predict_with_fake_runners(tmp_path, monkeypatch, "low,high") == ["high"]
    err = capsys.readouterr().err
    assert f"t low: reused the outputs of an earlier run in {out / partial[0]} (same config, weights and features)" \
        in err
    assert sorted(os.listdir(out)) == ["t"]                                   # the stopped run's directory is gone
    assert (out / "t" / "result_low.npz").read_bytes() == before
    assert json.loads((out / "t" / "ranking_debug.json").read_text())["order"] == ["high", "low"]


def test_a_finished_target_with_other_models_reuses_the_ones_it_has(tmp_path, monkeypatch, capsys):
    assert _predict_with_fake_runners(tmp_path, monkeypatch, "low,high") == ["low", "high"]
    assert _predict_with_fake_runners(tmp_path, monkeypatch, "high,low") == []          # same models: skipped
    assert "t: already finished" in capsys.readouterr().err
    assert _predict_with_fake_runners(tmp_path, monkeypatch, "low,high,mid") == ["mid"]
    err = capsys.readouterr().err
    assert "t: finished in" in err and "with models high, low; predicting it again for low, high, mid" in err
    assert "t low: reused" in err and "t high: reused" in err
    ranking = json.loads((tmp_path / "out" / "t" / "ranking_debug.json").read_text())
    assert ranking["order"] == ["high", "mid", "low"]
    # another config (or weights, or features): nothing to reuse; --overwrite reuses nothing either
    assert _predict_with_fake_runners(tmp_path, monkeypatch, "low,mid", "--num-recycle", "2") == ["low", "mid"]
    assert _predict_with_fake_runners(tmp_path, monkeypatch, "low,mid", "--num-recycle", "2",
                                      "--overwrite") == ["low", "mid"]


def test_run_record_holds_the_command_and_each_models_config(tmp_path, monkeypatch):
    import yaml
    from mindsponge_fold.common.config import load_config
    _predict_with_fake_runners(tmp_path, monkeypatch, "low,high", "--set", "model.num_recycle=2")
    d = tmp_path / "out" / "t"
    run = json.loads((d / "run.json").read_text())
    assert run["command"] == "mindsponge-fold predict --models low,high --set model.num_recycle=2"
    assert run["cwd"] == os.getcwd() and set(run["models"]) == {"low", "high"}
    assert run["models"]["high"]["feature_seed"] == 1 and len(run["models"]["high"]["fingerprint"]) == 64
    assert run["models"]["low"]["weights"] == "random weights, seed 0"
    assert "dropout_seed" not in run["models"]["low"]
    configs = yaml.safe_load((d / "config.yaml").read_text())
    expected = load_config("tiny", ["model.num_recycle=2"]).to_dict()
    assert configs == {"low": expected, "high": expected}
    (tmp_path / "low.yaml").write_text(yaml.safe_dump(configs["low"]))      # a model's section is a config file
    assert load_config(str(tmp_path / "low.yaml")).to_dict() == expected
    # eval_dropout: each model's dropout seed is recorded (its feature seed, as AlphaFold's model_random_seed)
    _predict_with_fake_runners(tmp_path, monkeypatch, "low,high", "--seed", "3", "--overwrite",
                               "--set", "model.global_config.eval_dropout=true")
    run = json.loads((d / "run.json").read_text())
    assert {m: r["dropout_seed"] for m, r in run["models"].items()} == {"low": 6, "high": 7}


def test_max_length_names_the_fasta_before_any_model_loads(capsys, workdir):
    status = main(["predict", "--output-dir", str(workdir / "out")] + base(workdir) + ["--max-length", "96"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and lines == [f"mindsponge-fold predict: error: {workdir / 'q.fasta'}: target '2crb_A': 97 "
                                     f"residues, more than the maximum length 96 (--max-length)"], lines


def test_msa_option_errors(capsys, workdir):
    """--msa: one-line errors, before any model loads, for a missing a3m, an a3m of another query, one file for two
    targets and another source of alignments beside it."""
    models = ["--models", "tiny", "--random-weights", "--models-to-relax", "none"]
    a3m_dir = workdir / "a3m"
    a3m_dir.mkdir()
    argv = ["--fasta", str(workdir / "q.fasta"), *models]
    fails(capsys, workdir, argv + ["--msa", str(a3m_dir)], str(a3m_dir / "2crb_A.a3m"), "no such a3m file (--msa)")
    (a3m_dir / "2crb_A.a3m").write_text(f">101\n{SEQ[::-1]}\n")
    fails(capsys, workdir, argv + ["--msa", str(a3m_dir)], "2crb_A.a3m", "is not the query sequence of",
          "(target '2crb_A')")
    (a3m_dir / "2crb_A.a3m").write_text(f">101\n{SEQ}\n")
    fails(capsys, workdir, argv + ["--msa", str(a3m_dir), "--alignments-dir", str(workdir / "aln")],
          "--msa is the whole MSA of each target: it cannot be combined with --alignments-dir")
    fails(capsys, workdir, argv + ["--msa", str(a3m_dir), "--single-sequence"], "cannot be combined with "
          "--single-sequence")
    (workdir / "two.fasta").write_text(f">2crb_A\n{SEQ}\n>b\n{SEQ}\n")
    fails(capsys, workdir, ["--fasta", str(workdir / "two.fasta"), *models, "--msa", str(a3m_dir / "2crb_A.a3m")],
          "--msa names one a3m file but there are several targets")
