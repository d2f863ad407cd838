"""Bad-input corpus, features and training data: feature files (run-features, predict --features), make-mindrecord
inputs, make-training-set, make-distillation-set, train's MindRecord data. What every case asserts:
``bad_inputs.py``."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from bad_inputs import (Bench, Corpus, changed, check_case, ground_truth_reference, make_mindrecord, predict,
                        processed_reference, raw_reference, run_features, train)
from helpers import reference_path

corpus = Corpus()
case = corpus.case


# ----------------------------------------------------------------------------------------- feature files

@case("run-features-missing", "@nope.npz", "no such features file")
def _(w):
    return run_features(w, w.path("nope.npz"))


@case("run-features-random-bytes", "@f.npz", "not an .npz features file: binary data of unknown format")
def _(w):
    return run_features(w, w.random("f.npz"))


@case("run-features-pickle", "@f.pkl", "not an .npz features file: a Python pickle")
def _(w):
    return run_features(w, w.bytes("f.pkl", pickle.dumps(processed_reference())))


@case("run-features-directory", "@feats", "features file")
def _(w):
    return run_features(w, w.directory("feats"))


@case("run-features-wrong-shape", "@f.npz", "msa_feat", "(2, 124, 97, 40)")
def _(w):
    p = processed_reference()
    return run_features(w, w.npz("f.npz", changed(p, msa_feat=p["msa_feat"][..., :40])))


@case("run-features-lengths-disagree", "@f.npz", "target_feat", "N_res=90")
def _(w):
    p = processed_reference()
    return run_features(w, w.npz("f.npz", changed(p, target_feat=p["target_feat"][:, :90])))


@case("run-features-wrong-dtype", "@f.npz", "aatype", "float")
def _(w):
    p = processed_reference()
    return run_features(w, w.npz("f.npz", changed(p, aatype=p["aatype"] + 0.5)))


@case("run-features-string-array", "@f.npz", "msa_feat", "dtype")
def _(w):
    p = processed_reference()
    return run_features(w, w.npz("f.npz", changed(p, msa_feat=np.full(p["msa_feat"].shape, "x"))))


@case("run-features-object-array", "@f.npz", "not a readable .npz features file")
def _(w):
    p = processed_reference()
    path = w.path("f.npz")
    np.savez(path, **changed(p, msa_feat=np.array([{"a": 1}], dtype=object)))
    return run_features(w, path)


@case("run-features-nan", "@f.npz", "msa_feat", "NaN")
def _(w):
    p = processed_reference()
    bad = p["msa_feat"].copy()
    bad[0, 0, 0, 0] = np.nan
    return run_features(w, w.npz("f.npz", changed(p, msa_feat=bad)))


@case("run-features-aatype-out-of-range", "@f.npz", "aatype", "[0, 25]", "[0, 20]")
def _(w):
    p = processed_reference()
    bad = p["aatype"].copy()
    bad[0, 3] = 25
    return run_features(w, w.npz("f.npz", changed(p, aatype=bad)))


@case("run-features-ground-truth-missing", "@gt.npz", "no such ground-truth file")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--ground-truth", w.path("gt.npz"),
                        "--num-recycle", "1")


@case("run-features-ground-truth-lacks-labels", "@gt.npz", "all_atom_positions")
def _(w):
    gt = w.npz("gt.npz", changed(ground_truth_reference(), all_atom_positions=None, atom14_gt_positions=None))
    return run_features(w, reference_path("processed_features.npz"), "--ground-truth", gt, "--num-recycle", "1")


@case("run-features-ground-truth-other-length", "@gt.npz", "N_res")
def _(w):
    gt = w.npz("gt.npz", {k: v[:50] if v.ndim else v for k, v in ground_truth_reference().items()})
    return run_features(w, reference_path("processed_features.npz"), "--ground-truth", gt, "--num-recycle", "1")


@case("run-features-teacher-missing", "@ref.npz", "no such teacher-forcing reference file")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--teacher-forcing", w.path("ref.npz"),
                        "--num-recycle", "1")


@case("run-features-gradients-without-ground-truth", "@g.npz", "--gradients needs --ground-truth")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--gradients", w.path("g.npz"))


@case("run-features-gradients-with-ema", "@g.npz", "drop --ema")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--gradients", w.path("g.npz"),
                        "--ground-truth", reference_path("ground_truth.npz"), "--ema")


@case("run-features-negative-recycling", "--num-recycle", "-1")
def _(w):
    return run_features(w, reference_path("processed_features.npz"), "--num-recycle", "-1")


@case("predict-features-missing", "@nope.npz", "no such features file")
def _(w):
    return predict(w, inputs=["--features", w.path("nope.npz")])


@case("predict-features-random-bytes", "@f.npz", "not an .npz features file: binary data of unknown format")
def _(w):
    return predict(w, inputs=["--features", w.random("f.npz")])


@case("predict-raw-features-msa-width", "@raw.npz", "has N_res=50, other features have N_res=97")
def _(w):
    r = raw_reference()
    return predict(w, inputs=["--features", w.npz("raw.npz", changed(
        r, msa=r["msa"][:, :50], deletion_matrix_int=r["deletion_matrix_int"][:, :50]))])


@case("predict-raw-features-wrong-dtype", "@raw.npz", "msa", "dtype")
def _(w):
    r = raw_reference()
    return predict(w, inputs=["--features", w.npz("raw.npz", changed(r, msa=r["msa"].astype("U2")))])


@case("predict-raw-features-lossy-dtype", "@raw.npz", "deletion_matrix_int", "without loss")
def _(w):
    r = raw_reference()
    return predict(w, inputs=["--features", w.npz("raw.npz", changed(
        r, deletion_matrix_int=r["deletion_matrix_int"] + 0.5))])


@case("predict-raw-features-msa-ids-out-of-range", "@raw.npz", "'msa' has values in [0, 40]", "[0, 21]")
def _(w):
    r = raw_reference()
    msa = r["msa"].copy()
    msa[3, 4] = 40
    return predict(w, inputs=["--features", w.npz("raw.npz", changed(r, msa=msa))])


@case("predict-features-empty-npz", "@e.npz", "no 'aatype'")
def _(w):
    return predict(w, inputs=["--features", w.npz("e.npz", {})])


@case("mindrecord-features-missing-keys", "@feats/s1.npz", "missing feature(s): msa")
def _(w):
    w.npz("feats/s1.npz", changed(raw_reference(), msa=None))
    return make_mindrecord(w, w.path("feats"))


@case("mindrecord-features-wrong-shape", "@feats/s1.npz", "template_aatype")
def _(w):
    r = raw_reference()
    w.npz("feats/s1.npz", changed(r, template_aatype=r["template_aatype"][..., :20]))
    return make_mindrecord(w, w.path("feats"))


@case("mindrecord-seq-length-wrong", "@feats/s1.npz", "seq_length")
def _(w):
    r = raw_reference()
    w.npz("feats/s1.npz", changed(r, seq_length=r["seq_length"] + 1))
    return make_mindrecord(w, w.path("feats"))


@case("mindrecord-chain-table-bad-header", "@chains.tsv", "not a chain table")
def _(w):
    w.npz("feats/s1.npz", raw_reference())
    return make_mindrecord(w, w.path("feats"), "--chain-table", w.text("chains.tsv", "chain\tcluster\ns1\t1\n"))


@case("mindrecord-chain-table-missing-sample", "@chains.tsv", "1 sample(s) are not in the chain table (e.g. 's1')")
def _(w):
    w.npz("feats/s1.npz", raw_reference())
    header = "chain_id\tlength\tresolution\trelease_date\tcluster_id\tcluster_size\n"
    return make_mindrecord(w, w.path("feats"), "--chain-table",
                           w.text("chains.tsv", header + "s2\t97\t2.0\t2001-01-01\tc1\t1\n"))


@case("train-distillation-fraction-out-of-range", "--distillation-fraction must be in [0, 1], got 1.5")
def _(w):
    return train(w, "--distillation-data", w.path("d.mindrecord"), "--distillation-fraction", "1.5")


@case("train-distillation-data-missing", "@d.mindrecord.manifest.json", "no manifest")
def _(w):
    import shutil

    from mindsponge_fold.data import mindrecord as mr
    w.npz("feats/s1.npz", raw_reference())
    mr.convert(w.path("feats"), w.path("data/train.mindrecord"), progress=False)
    shutil.rmtree(w.path("feats"))
    return train(w, "--distillation-data", w.path("d.mindrecord"))


@case("distillation-set-two-models", "give exactly one model", "got 2")
def _(w):
    return ["make-distillation-set", "--fasta", w.fasta(), "--single-sequence", "--output-dir", w.path("d"),
            "--models", "tiny,tiny_train", "--random-weights", "--device", "CPU"]


@case("distillation-set-plddt-threshold-out-of-range", "--plddt-mask-threshold must be in [0, 100]", "got 150")
def _(w):
    return ["make-distillation-set", "--fasta", w.fasta(), "--single-sequence", "--output-dir", w.path("d"),
            "--models", "tiny", "--random-weights", "--device", "CPU", "--plddt-mask-threshold", "150"]


@case("mindrecord-pickle-of-a-list", "@feats/s1.pkl", "pickle holds a list")
def _(w):
    w.bytes("feats/s1.pkl", pickle.dumps([1, 2, 3]))
    return make_mindrecord(w, w.path("feats"), "--allow-pickle")


@case("mindrecord-truncated-pickle", "@feats/s1.pkl", "cannot unpickle")
def _(w):
    w.bytes("feats/s1.pkl", pickle.dumps(raw_reference())[:1000])
    return make_mindrecord(w, w.path("feats"), "--allow-pickle")


@case("mindrecord-features-dir-empty", "@feats", "no feature files")
def _(w):
    return make_mindrecord(w, w.directory("feats"))


@case("mindrecord-features-dir-missing", "@feats", "features directory not found")
def _(w):
    return make_mindrecord(w, w.path("feats"))


@case("mindrecord-every-sample-skipped", "@mr/train.mindrecord.manifest.json", "every sample (1) was skipped",
      "the dataset is empty", warn=True)
def _(w):
    w.npz("feats/s1.npz", raw_reference())
    return make_mindrecord(w, w.path("feats"), "--max-seq-length", "50")


@case("mindrecord-zero-shards", "--shards must be >= 1")
def _(w):
    w.npz("feats/s1.npz", raw_reference())
    return make_mindrecord(w, w.path("feats"), "--shards", "0")


@case("mindrecord-mmcif-dir-without-the-entry", "@mmcifs", "no mmCIF 2crb.cif")
def _(w):
    w.npz("feats/2crb_A.npz", changed(raw_reference(), all_atom_positions=None, all_atom_mask=None,
                                      resolution=None))
    return make_mindrecord(w, w.path("feats"), "--mmcif-dir", w.directory("mmcifs"))


def make_training_set(w: Bench, *extra, mmcifs=None, alignments=None):
    return ["make-training-set", "--mmcif-dir", mmcifs or w.directory("mmcifs"), "--alignment-dir",
            alignments or w.path("alns"), "--out", w.path("trainset"), "--no-progress", *extra]


@case("training-set-alignment-dir-missing", "@alns", "alignment directory not found")
def _(w):
    return make_training_set(w)


@case("training-set-no-chain-directories", "@alns", "no <pdb_id>_<chain> alignment sub-directories")
def _(w):
    w.text("alns/uniref90_hits.sto", "# STOCKHOLM 1.0\n//\n")
    return make_training_set(w, alignments=w.path("alns"))


@case("training-set-bad-release-date", "--max-release-date", "YYYY-MM-DD", "2018/04/30")
def _(w):
    return make_training_set(w, "--max-release-date", "2018/04/30")


@case("training-set-bad-cluster-file", "@clusters.txt:2", "'2Q2K' is not PDBID_ENTITYID")
def _(w):
    w.directory("alns/2q2k_A")
    w.text("clusters.txt", "1PSM_1 2CRB_1\n2Q2K\n")
    return make_training_set(w, "--cluster-file", w.path("clusters.txt"))



# --------------------------------------------------------------------------------------------------- MindRecord

def mindrecord_dataset(w, name="data") -> object:
    """A finished one-sample conversion of the reference raw features (labels included) under NAME/."""
    from mindsponge_fold.data.mindrecord import convert
    w.npz(f"{name}_src/2crb_A.npz", raw_reference())
    out = w.path(f"{name}/train.mindrecord")
    convert(w.path(f"{name}_src"), out, progress=False)
    return out


@case("train-data-missing", "@data/train.mindrecord", "no manifest")
def _(w):
    return train(w)


@case("train-data-random-bytes", "@data/train.mindrecord:", "not a make-mindrecord --out path")
def _(w):
    return train(w, data=w.random("data/train.mindrecord"))


@case("train-data-manifest-random-bytes", "@data/train.mindrecord.manifest.json", "not valid JSON")
def _(w):
    from mindsponge_fold.data.mindrecord import manifest_path
    out = w.path("data/train.mindrecord")
    w.random(str(manifest_path(out).relative_to(w.root)))
    return train(w, data=out)


@case("train-data-shard-random-bytes", "@data/train.mindrecord", "shard")
def _(w):
    out = mindrecord_dataset(w)
    shard = next(p for p in out.parent.iterdir() if p.name.startswith("train.mindrecord-") and "." not in
                 p.name.removeprefix("train.mindrecord-"))
    shard.write_bytes(np.random.default_rng(1).bytes(shard.stat().st_size))
    return train(w, data=out)


@case("train-data-empty-dataset", "@data", "no samples")
def _(w):
    w.npz("data_src/2crb_A.npz", raw_reference())
    out = w.path("data/train.mindrecord")
    from mindsponge_fold.data.mindrecord import convert
    convert(w.path("data_src"), out, progress=False, max_seq_length=10)     # the one sample is skipped
    return train(w, data=out)


@case("train-val-data-unused", "@val/val.mindrecord", "--val-data is not used", warn=True, status=2)
def _(w):
    return train(w, "--val-data", w.path("val/val.mindrecord"))        # then refused: no --data


@case("train-val-data-missing", "@val/val.mindrecord", "no manifest")
def _(w):
    out = mindrecord_dataset(w)
    return train(w, "--val-data", w.path("val/val.mindrecord"), "--set", "train.eval_every=5", data=out)


@pytest.mark.parametrize("name", sorted(corpus.cases))
def test_bad_input(name, tmp_path, capsys, monkeypatch):
    check_case(corpus.cases[name], tmp_path, capsys, monkeypatch)
