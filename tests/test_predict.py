"""``predict`` end to end on a real chain (2crb A: its precomputed alignments, template hits from hmmsearch output
with the mmCIFs of the hits), the tiny preset, random weights from an AlphaFold-layout .npz, Amber relax and plots;
every output file is parsed back. Plus: run-features on the model input predict used gives bit for bit predict's
outputs (one inference code path), a rerun skips the finished target, and a stopped run is resumed per model."""
import json
import os
import warnings

import numpy as np
import pytest

from helpers import reference_path, shared_path
from mindsponge_fold.cli import main

MODEL = "tiny"


def load(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def prediction(tmp_path_factory):
    from mindsponge_fold.common.config import load_config
    from mindsponge_fold.common.fileio import save_npz
    from mindsponge_fold.data import mmcif
    from mindsponge_fold.predict.models import random_alphafold_params
    data = shared_path("data", "openfold_testdata")
    tmp = tmp_path_factory.mktemp("predict")
    aln = tmp / "alignments" / "2crb_A"
    aln.mkdir(parents=True)
    src = data / "alignments" / "2crb_A"
    for name in ("uniref90_hits.sto", "bfd_uniclust_hits.a3m", "mgnify_hits.sto"):
        os.symlink(src / name, aln / name)
    os.symlink(src / "hmm_output.sto", aln / "pdb_hits.sto")     # hmmsearch hits against PDB seqres
    sequence = mmcif.load_chain(data / "mmcifs" / "2crb.cif", "A").sequence
    fasta = tmp / "query.fasta"
    fasta.write_text(f">2crb_A test chain\n{sequence}\n")
    weights = tmp / f"params_{MODEL}.npz"
    save_npz(weights, random_alphafold_params(load_config(MODEL), seed=3), compressed=False)
    out = tmp / "out"
    argv = ["predict", "--fasta", str(fasta), "--output-dir", str(out), "--alignments-dir", str(aln.parent),
            "--mmcif-dir", str(data / "mmcifs"), "--max-templates", "2", "--models", f"{MODEL}={weights}",
            "--plots", "--save-processed-features", "--set", "relax.max_iterations=100",   # random weights: a
            "--set", "relax.max_outer_iterations=1", "--set", "relax.untangle=false"]      # tangle, capped relax
    assert main(argv) == 0
    return {"dir": out / "2crb_A", "argv": argv, "sequence": sequence, "weights": weights}


def test_every_output_is_written_and_parses(prediction):
    d = prediction["dir"]
    expected = {"features.npz", "config.yaml", "run.json", f"result_{MODEL}.npz", f"unrelaxed_{MODEL}.pdb",
                f"unrelaxed_{MODEL}.cif",
                f"relaxed_{MODEL}.pdb", f"relaxed_{MODEL}.cif", "ranked_0.pdb", "ranked_0.cif", f"pae_{MODEL}.json",
                f"confidence_{MODEL}.json", "ranking_debug.json", "relax_metrics.json", "timings.json", "plots"}
    assert expected <= set(os.listdir(d)), expected - set(os.listdir(d))
    assert not [p for p in os.listdir(d.parent) if p.startswith(".")]          # no temporary leftovers
    raw = load(d / "features.npz")
    assert raw["msa"].shape == (868, 97)                                       # 449 + 416 + 19 rows, deduplicated
    assert raw["template_aatype"].shape[0] == 2                                 # 2crb_A itself and 4zey_A
    ranking = json.loads((d / "ranking_debug.json").read_text())
    result = load(d / f"result_{MODEL}.npz")
    plddt = result["confidence/plddt"]
    assert plddt.shape == (97,) and 0 < plddt.min() <= plddt.max() < 100
    assert ranking["order"] == [MODEL] and ranking["num_recycles"] == {MODEL: 1}    # tiny: num_recycle 1
    assert int(load(d / f"result_{MODEL}.npz")["num_recycles"]) == 1
    assert ranking["plddts"][MODEL] == pytest.approx(float(plddt.mean()))
    pae = json.loads((d / f"pae_{MODEL}.json").read_text())
    assert np.allclose(pae[0]["predicted_aligned_error"], result["confidence/predicted_aligned_error"], atol=0.051)
    max_pae = float(result["confidence/max_predicted_aligned_error"])
    assert pae[0]["max_predicted_aligned_error"] == pytest.approx(max_pae)
    conf = json.loads((d / f"confidence_{MODEL}.json").read_text())
    assert np.allclose(conf["confidenceScore"], plddt, atol=0.0051)
    timings = json.loads((d / "timings.json").read_text())
    for key in ("features", f"process_features_{MODEL}", f"compile_{MODEL}", f"predict_{MODEL}", f"relax_{MODEL}"):
        assert timings[key] >= 0, key
    relax = json.loads((d / "relax_metrics.json").read_text())
    assert relax[MODEL]["outer_iterations"] == 1
    import matplotlib.pyplot as plt
    for png in ("plddt.png", f"pae_{MODEL}.png", f"contacts_{MODEL}.png"):
        assert plt.imread(d / "plots" / png).shape[0] > 100, png


def _structure(path):
    from Bio.PDB import MMCIFParser, PDBParser
    parser = MMCIFParser(QUIET=True) if path.suffix == ".cif" else PDBParser(QUIET=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return parser.get_structure(path.stem, str(path))


@pytest.mark.parametrize("stem", [f"unrelaxed_{MODEL}", f"relaxed_{MODEL}", "ranked_0"])
@pytest.mark.parametrize("suffix", [".pdb", ".cif"])
def test_structures_carry_plddt_in_b_factors(prediction, stem, suffix):
    from mindsponge_fold.common import residue_constants as rc
    d = prediction["dir"]
    plddt = load(d / f"result_{MODEL}.npz")["confidence/plddt"]
    residues = [r for r in _structure(d / f"{stem}{suffix}").get_residues()]
    assert "".join(rc.restype_3to1[r.get_resname()] for r in residues) == prediction["sequence"]
    for i, res in enumerate(residues):
        b = {round(a.get_bfactor(), 2) for a in res.get_atoms()}
        assert b == {round(float(plddt[i]), 2)}, (stem, i, b, plddt[i])
    if stem.startswith("relaxed"):
        assert any(a.element == "H" for a in residues[0].get_atoms()) == (suffix == ".pdb")


def test_unrelaxed_coordinates_are_the_model_output(prediction):
    from mindsponge_fold.common import protein
    d = prediction["dir"]
    result = load(d / f"result_{MODEL}.npz")
    for suffix in (".pdb", ".cif"):
        prot = protein.from_file(d / f"unrelaxed_{MODEL}{suffix}")
        mask = result["structure_module/final_atom_mask"] > 0.5
        np.testing.assert_array_equal(prot.atom_mask > 0.5, mask)
        np.testing.assert_allclose(prot.atom_positions[mask], result["structure_module/final_atom_positions"][mask],
                                   atol=6e-4)


def test_rerun_skips_the_finished_target(prediction, capsys):
    d = prediction["dir"]
    before = {p: os.stat(d / p).st_mtime_ns for p in os.listdir(d)}
    assert main(prediction["argv"]) == 0
    assert "skipped" in capsys.readouterr().err
    assert {p: os.stat(d / p).st_mtime_ns for p in os.listdir(d)} == before


def test_run_record_and_resolved_config(prediction):
    import yaml
    from mindsponge_fold.common.config import load_config
    d = prediction["dir"]
    run = json.loads((d / "run.json").read_text())
    assert run["command"].startswith("mindsponge-fold predict --fasta ") and "relax.untangle=false" in run["command"]
    assert run["models"][MODEL]["weights"] == str(prediction["weights"])
    config = yaml.safe_load((d / "config.yaml").read_text())[MODEL]
    assert config == load_config(MODEL, [a for a in prediction["argv"] if a.startswith("relax.")]).to_dict()


def test_a_stopped_run_is_resumed_without_running_the_model_again(prediction, tmp_path, capsys):
    """A run stopped after its model finished (its hidden directory left by a dead process): the rerun reuses the
    model's outputs (no iteration runs) and finishes the target."""
    import shutil
    out = tmp_path / "out"
    stopped = out / ".2crb_A.partial-999999999"
    shutil.copytree(prediction["dir"], stopped)
    for name in os.listdir(stopped):
        if name.startswith(("ranked_", "relaxed_", "ranking_debug", "relax_metrics", "timings")) or name == "plots":
            shutil.rmtree(stopped / name) if name == "plots" else os.unlink(stopped / name)
    argv = list(prediction["argv"])
    argv[argv.index("--output-dir") + 1] = str(out)
    assert main(argv + ["--models-to-relax", "none"]) == 0
    err = capsys.readouterr().err
    assert f"2crb_A {MODEL}: reused the outputs of an earlier run in {stopped}" in err and "iteration" not in err
    assert os.listdir(out) == ["2crb_A"]
    assert (out / "2crb_A" / f"result_{MODEL}.npz").read_bytes() == (prediction["dir"] / f"result_{MODEL}.npz"
                                                                     ).read_bytes()
    assert json.loads((out / "2crb_A" / "ranking_debug.json").read_text())["order"] == [MODEL]


def test_run_features_on_the_same_input_gives_the_same_outputs_bit_for_bit(prediction, tmp_path):
    """predict's model stage is ModelRunner.run, as run-features': the processed features predict fed the model,
    run through run-features with the same weights, give the same coordinates and confidences, bit for bit."""
    d = prediction["dir"]
    out = tmp_path / "run_features.npz"
    assert main(["run-features", "--features", str(d / f"processed_features_{MODEL}.npz"),
                 "--params", str(prediction["weights"]), "--model", MODEL, "--out", str(out)]) == 0
    ours, theirs = load(d / f"result_{MODEL}.npz"), load(out)
    for key in ("structure_module/final_atom_positions", "confidence/plddt", "confidence/predicted_aligned_error",
                "distogram/logits"):
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    assert np.std(ours["structure_module/final_atom_positions"]) > 1.0       # a spread-out, non-trivial structure


@pytest.mark.skipif(os.environ.get("MSF_PREDICT_FIXTURE_PARITY") != "1",
                    reason="opt-in (MSF_PREDICT_FIXTURE_PARITY=1): two full-width fixture models, ~9 GB, ~3 min")
def test_fixture_weights_predict_equals_run_features_bit_for_bit(tmp_path):
    """The same with the reference fixture's weights and raw features (predict processes them, with 64 extra-MSA
    rows instead of the fixture's 744 to stay under 9 GB)."""
    raw, params, config = (str(reference_path(n)) for n in ("raw_features.npz", "params.npz", "config.json"))
    small = ["--set", "data.common.max_extra_msa=64"]
    assert main(["predict", "--features", raw, "--name", "fixture", "--af-config", config, *small,
                 "--models", f"ref={params}", "--models-to-relax", "none", "--save-processed-features",
                 "--output-dir", str(tmp_path / "out")]) == 0
    d = tmp_path / "out" / "fixture"
    processed = load(d / "processed_features_ref.npz")
    assert processed["extra_msa"].shape[:2] == (2, 64) and processed["msa_feat"].shape[:2] == (2, 124)
    assert main(["run-features", "--features", str(d / "processed_features_ref.npz"), "--params", params,
                 "--af-config", config, *small, "--out", str(tmp_path / "run_features.npz")]) == 0
    ours, theirs = load(d / "result_ref.npz"), load(tmp_path / "run_features.npz")
    for key in ("structure_module/final_atom_positions", "confidence/plddt", "confidence/predicted_aligned_error",
                "distogram/logits"):
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    assert np.std(ours["confidence/plddt"]) > 0.1                 # the fixture's weights: a varied, real output
