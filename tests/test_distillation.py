"""Self-distillation (Suppl. 1.3): labelled examples (mindsponge_fold.data.distillation) through MindRecord and the
loader (is_distillation, masked residues, MSA subsampling), the PDB-only heads skipped for them in training, training
that mixes two MindRecords with the requested fraction (counted in the log, continued by a resume), and the
``make-distillation-set`` command with a tiny random model."""
import json

import numpy as np
import pytest
from helpers import shared_path
from train_helpers import make_records, raw_2crb_a, train_config

from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data import mindrecord as mr
from mindsponge_fold.data.dataset import create_train_dataset
from mindsponge_fold.data.distillation import DistillationFilter, distillation_example
from mindsponge_fold.train import curves, sources, state
from mindsponge_fold.train.loop import RunOptions, train

DISTILLED = "d2crb_A"
MAX_MSA = 4            # data.train.max_distillation_msa in these tests


def _plddt(n):
    """First half confident (90), second half not (30)."""
    return np.where(np.arange(n) < n // 2, 90.0, 30.0)


@pytest.fixture(scope="module")
def distill_records(tmp_path_factory):
    """A distillation MindRecord: 2crb_A's features with its own structure as the 'prediction', the second half of
    the residues below the pLDDT threshold, and (to show that is_distillation alone gates the PDB-only heads) a
    resolution inside their window."""
    root = tmp_path_factory.mktemp("distill")
    raw = raw_2crb_a()
    example = distillation_example(raw, raw["all_atom_positions"], raw["all_atom_mask"],
                                   _plddt(raw["aatype"].shape[0]))
    example["resolution"] = np.asarray(2.0, np.float32)
    (root / "in").mkdir()
    np.savez(root / "in" / f"{DISTILLED}.npz", **example)
    out = root / "distill.mindrecord"
    mr.convert(root / "in", out, progress=False)
    return out


@pytest.fixture(scope="module")
def pdb_records(tmp_path_factory):
    return make_records(tmp_path_factory.mktemp("pdb"), names=("2crb_A",))


def test_filter_verdicts():
    f = DistillationFilter(plddt_mask_threshold=50, min_mean_plddt=60)
    assert f.verdict([90, 80, 40]) == (True, "mean pLDDT 70.0")
    assert f.verdict([70, 50, 40])[0] is False and "mean pLDDT 53.3 < 60" in f.verdict([70, 50, 40])[1]
    assert DistillationFilter().verdict([40, 45]) == (False, "no residue with pLDDT >= 50")
    with pytest.raises(InputError, match=r"--min-mean-plddt must be in \[0, 100\]"):
        DistillationFilter(min_mean_plddt=0.7 * 1000)


def test_distillation_record_is_flagged_masked_and_subsampled(distill_records, pdb_records):
    raw = raw_2crb_a()
    n = raw["aatype"].shape[0]
    back = mr.read_samples(distill_records)[DISTILLED]
    assert float(back["is_distillation"]) == 1.0
    assert mr.load_manifest(distill_records)["samples"][DISTILLED]["is_distillation"] is True
    confident = _plddt(n) >= 50
    np.testing.assert_array_equal(back["all_atom_mask"][confident], raw["all_atom_mask"][confident])
    assert raw["all_atom_mask"][~confident].sum() > 0 and back["all_atom_mask"][~confident].sum() == 0
    assert "is_distillation" not in mr.read_samples(pdb_records)["2crb_A"]
    cfg = train_config([f"data.train.max_distillation_msa={MAX_MSA}"])
    rows = {}
    for name, data in (("pdb", pdb_records), ("distillation", distill_records)):
        batch = next(create_train_dataset(data, cfg, batch_size=1, num_workers=1)
                     .create_dict_iterator(output_numpy=True, num_epochs=1))
        rows[name] = batch
    assert np.all(rows["distillation"]["is_distillation"] == 1) and np.all(rows["pdb"]["is_distillation"] == 0)
    # the MSA is subsampled to MAX_MSA rows first (block deletion may remove some more); PDB keeps its 868
    d_rows = rows["distillation"]["msa_row_mask"][0, 0].sum()
    assert 0 < d_rows <= MAX_MSA and rows["distillation"]["extra_msa_row_mask"].sum() == 0
    assert rows["pdb"]["msa_row_mask"][0, 0].sum() == cfg.data.train.max_msa_clusters
    assert rows["pdb"]["extra_msa_row_mask"][0, 0].sum() > 0


@pytest.fixture(scope="module")
def trainer():
    from mindsponge_fold.model.runner import set_graph_mode
    from mindsponge_fold.train.step import TrainStep
    set_graph_mode("CPU")         # as train does (guarded: setting the device again fails once a kernel ran)
    return TrainStep(train_config())


def test_training_mixes_sources_with_the_fraction_and_resumes(trainer, pdb_records, distill_records, tmp_path,
                                                             capsys):
    """3 steps at fraction 0.5: each step's source is the seeded draw, the global counts are logged (train_log and
    stdout), the PDB-only pLDDT loss is 0 exactly on distillation steps; a resume from the step-1 checkpoint repeats
    the uninterrupted run's sources and samples."""
    def draw(seed):
        return [sources.SOURCES[int(c)] for s in range(3) for c in sources.source_choices(seed, s, 0, 1, 0.5)]
    seed = next(s for s in range(50) if set(draw(s)) == {"pdb", "distillation"})    # a seed that uses both
    expected = draw(seed)
    cfg = train_config([f"data.train.max_distillation_msa={MAX_MSA}", "train.checkpoint_every=1",
                        "train.keep_checkpoints=0", f"train.seed={seed}"])
    opts = dict(data=str(pdb_records), distillation_data=str(distill_records), distillation_fraction=0.5,
                progress=False, num_workers=1)
    full = train(cfg, RunOptions(out_dir=str(tmp_path / "full"), num_steps=3, **opts), trainer=trainer)
    assert full["step"] == 3
    stdout = capsys.readouterr().out
    log = curves.read_log(tmp_path / "full" / "train_log.jsonl")
    assert [r["sources"] for r in log] == [[e] for e in expected]
    for i, r in enumerate(log):
        assert r["count/distillation"] == expected[:i + 1].count("distillation")
        assert r["count/pdb"] == expected[:i + 1].count("pdb")
        assert r["names"] == [DISTILLED if expected[i] == "distillation" else "2crb_A"]
        if expected[i] == "distillation":
            assert r["loss/predicted_lddt"] == 0.0
        else:
            assert r["loss/predicted_lddt"] > 0.0
    assert [d["source"] for d in log[0]["epoch_draws"]] == [expected[0]]     # the epoch draw that step 1 began
    last = log[-1]
    assert f"pdb {last['count/pdb']} distillation {last['count/distillation']}" in stdout
    assert "epoch 0 (distillation): 1 draws of 1 distinct samples from 1 clusters (1 distillation)" in stdout
    resumed = tmp_path / "resumed"
    train(cfg, RunOptions(out_dir=str(resumed), num_steps=3, resume=str(state.checkpoint_path(tmp_path / "full", 1)),
                          **opts), trainer=trainer)
    again = curves.read_log(resumed / "train_log.jsonl")
    assert [r["step"] for r in again] == [2, 3]
    for key in ("sources", "names", "count/pdb", "count/distillation"):
        assert [r[key] for r in again] == [r[key] for r in log[1:]], key


def test_make_distillation_set_command(tmp_path, capsys):
    """A tiny random model predicts 1psm_A from its alignments; the kept example is labelled (is_distillation 1,
    resolution 0) with exactly the residues below the pLDDT threshold masked, and make-mindrecord accepts it."""
    from mindsponge_fold.cli import main
    from mindsponge_fold.data import mmcif
    data = shared_path("data", "openfold_testdata")
    fasta = tmp_path / "seqs.fasta"
    fasta.write_text(f">1psm_A\n{mmcif.load_chain(data / 'mmcifs' / '1psm.cif', 'A').sequence}\n")
    out = tmp_path / "distill"
    argv = ["make-distillation-set", "--fasta", str(fasta), "--alignments-dir", str(data / "alignments"),
            "--output-dir", str(out), "--models", "tiny", "--random-weights", "--preset", "tiny", "--device", "CPU",
            "--plddt-mask-threshold", "50"]
    assert main(argv) == 0
    summary = json.loads((out / "distillation_summary.json").read_text())
    entry = summary["1psm_A"]
    assert entry["residues"] == 38 and entry["kept"] is True
    assert 0 < entry["masked"] < entry["residues"]               # the random model's pLDDT straddles 50
    with np.load(out / "features" / "1psm_A.npz") as z:
        example = {k: z[k] for k in z.files}
    assert float(example["is_distillation"]) == 1.0 and float(example["resolution"]) == 0.0
    low = np.asarray(entry["plddt"]) < 50
    assert int(low.sum()) == entry["masked"] and entry["mean_plddt"] == pytest.approx(np.mean(entry["plddt"]), 1e-3)
    np.testing.assert_array_equal(example["all_atom_mask"].sum(-1) == 0, low)
    assert example["msa"].shape[0] > 1 and example["all_atom_positions"].shape == (38, 37, 3)
    capsys.readouterr()
    assert main(argv) == 0                                       # a rerun skips the finished target
    assert "1psm_A: done in an earlier run, skipped" in capsys.readouterr().err
    manifest = mr.convert(out / "features", tmp_path / "d.mindrecord", progress=False)
    assert manifest["samples"]["1psm_A"]["is_distillation"] is True


def test_pdb_only_heads_are_gated_by_is_distillation():
    """pLDDT, PAE and experimentally-resolved losses (resolution-filtered in AlphaFold) are zero for a distillation
    example even at a resolution inside their window; the other heads are not gated. (Last in this module: it runs
    kernels in PyNative mode, after which the trainer fixture could no longer set the device.)"""
    from mindspore import Tensor

    from mindsponge_fold.common.config import load_config
    from mindsponge_fold.train.losses import AlphaFoldLoss
    loss = AlphaFoldLoss(load_config("model_1_ptm"))
    gated = {"predicted_lddt", "predicted_aligned_error", "experimentally_resolved"}
    assert set(loss.resolution_windows) == gated
    one = Tensor(np.float32(1.0))
    for flag in (0.0, 1.0):
        batch = {"resolution": Tensor(np.float32(2.0)), "is_distillation": Tensor(np.float32(flag))}
        for name in sorted(gated | {"distogram", "masked_msa"}):
            value = float(loss._resolution_gate(name, one, batch).asnumpy())
            assert value == (0.0 if (flag and name in gated) else 1.0), (name, flag)
