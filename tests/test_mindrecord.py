"""make-mindrecord: raw features -> sharded MindRecord -> raw features, bit-exact; manifest; resume; bad input."""
import hashlib
import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import REPO_ROOT, reference_path, shared_path

from mindsponge_fold import cli
from mindsponge_fold.data import mindrecord as mr


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.fixture()
def features_dir(tmp_path):
    d = tmp_path / "features"
    d.mkdir()
    shutil.copy(reference_path("raw_features.npz"), d / "2crb_A.npz")
    return d


def test_round_trip_bit_exact_with_pickles(features_dir, tmp_path, capsys):
    pkl = shared_path("data", "openfold_testdata", "features.pkl")
    (features_dir / "of_sample").mkdir()
    shutil.copy(pkl, features_dir / "of_sample" / "features.pkl")
    shutil.copy(shared_path("data", "openfold_testdata", "alphafold_feature_dict.pickle"), features_dir / "afd.pickle")
    out = tmp_path / "mr" / "train.mindrecord"
    argv = ["make-mindrecord", "--features-dir", str(features_dir), "--out", str(out), "--shards", "2",
            "--allow-pickle", "--no-progress"]
    assert cli.main(argv) == 0
    assert "3 samples in 2 shard file(s)" in capsys.readouterr().out
    back = mr.read_samples(out)
    assert sorted(back) == ["2crb_A", "afd", "of_sample"]
    sources = {"2crb_A": features_dir / "2crb_A.npz", "of_sample": features_dir / "of_sample" / "features.pkl",
               "afd": features_dir / "afd.pickle"}
    for name, path in sources.items():
        want = mr.load_feature_file(path, allow_pickle=True)
        assert set(back[name]) == set(want), name
        for k in want:
            assert _same(back[name][k], want[k]), (name, k)
    # the pickle's aliases were canonicalised: template_all_atom_mask -> template_all_atom_masks, object -> |S
    assert back["of_sample"]["template_all_atom_masks"].shape == (8, 59, 37)
    assert back["of_sample"]["domain_name"].dtype.kind == "S"
    with np.load(sources["2crb_A"]) as z:          # an npz in canonical form round-trips to itself
        for k in z.files:
            assert _same(back["2crb_A"][k], z[k]), k
    manifest = json.loads(mr.manifest_path(out).read_text())
    entry = manifest["samples"]["2crb_A"]
    assert entry["seq_length"] == 97 and entry["num_msa"] == 868 and entry["has_labels"]
    assert entry["sha256"] == hashlib.sha256(sources["2crb_A"].read_bytes()).hexdigest()
    assert sum(s["num_samples"] for s in manifest["shards"]) == 3
    # a second run finds everything done and rewrites nothing
    mtimes = [p.stat().st_mtime_ns for p in sorted(out.parent.glob("train.mindrecord-*"))]
    assert cli.main(argv) == 0
    assert mtimes == [p.stat().st_mtime_ns for p in sorted(out.parent.glob("train.mindrecord-*"))]


def test_labels_from_mmcif(features_dir, tmp_path):
    with np.load(features_dir / "2crb_A.npz") as z:
        raw = {k: z[k] for k in z.files}
    np.savez(features_dir / "2crb_A.npz", **{k: v for k, v in raw.items()
                                             if k not in ("all_atom_positions", "all_atom_mask", "resolution")})
    cifs = shared_path("data", "openfold_testdata", "mmcifs")
    out = tmp_path / "train.mindrecord"
    mr.convert(features_dir, out, mmcif_dir=cifs, progress=False)
    got = mr.read_samples(out)["2crb_A"]
    np.testing.assert_allclose(got["all_atom_positions"], raw["all_atom_positions"], atol=1e-3)
    np.testing.assert_array_equal(got["all_atom_mask"], raw["all_atom_mask"])
    assert got["resolution"].shape == ()
    manifest = json.loads(mr.manifest_path(out).read_text())
    assert manifest["samples"]["2crb_A"]["labels"].endswith("2crb.cif")


_CRASH_SCRIPT = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {root!r})
    from mindsponge_fold.data import mindrecord as mr
    real, calls = mr.encode_record, [0]
    def crashing(*a, **k):
        calls[0] += 1
        if calls[0] == 2:          # hard crash in the middle of the second shard
            os._exit(17)
        return real(*a, **k)
    mr.encode_record = crashing
    mr.convert({src!r}, {out!r}, num_shards=3, progress=False)
""")


def test_resume_after_crash(features_dir, tmp_path):
    for name in ("3abc_A", "4xyz_B"):
        shutil.copy(features_dir / "2crb_A.npz", features_dir / f"{name}.npz")
    out = tmp_path / "mr" / "train.mindrecord"
    script = _CRASH_SCRIPT.format(root=str(REPO_ROOT), src=str(features_dir), out=str(out))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 17, proc.stderr[-2000:]
    manifest = json.loads(mr.manifest_path(out).read_text())
    assert [s["status"] for s in manifest["shards"]] == ["done", "pending", "pending"]
    assert list(manifest["samples"]) == ["2crb_A"]
    assert not list(out.parent.glob("train.mindrecord-00001*"))        # no half-written shard in place
    assert list(out.parent.glob(".train.mindrecord.tmp-*"))             # the crashed shard's scratch space
    with pytest.raises(Exception, match="incomplete"):
        mr.dataset_files(out)
    first = (out.parent / "train.mindrecord-00000-of-00003").stat().st_mtime_ns
    mr.convert(features_dir, out, num_shards=3, progress=False)
    assert (out.parent / "train.mindrecord-00000-of-00003").stat().st_mtime_ns == first     # not redone
    assert not list(out.parent.glob(".train.mindrecord.tmp-*"))
    back = mr.read_samples(out)
    assert sorted(back) == ["2crb_A", "3abc_A", "4xyz_B"]
    np.testing.assert_array_equal(back["4xyz_B"]["msa"], back["2crb_A"]["msa"])


@pytest.mark.parametrize("bad", ["notes.txt", "broken.npz", "sample.pkl"])
def test_bad_input_one_line_error(features_dir, tmp_path, capsys, bad):
    (features_dir / bad).write_bytes(b"this is not a feature file")
    out = tmp_path / "train.mindrecord"
    rc = cli.main(["make-mindrecord", "--features-dir", str(features_dir), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and bad in err
    if bad == "sample.pkl":
        assert "--allow-pickle" in err
    assert not mr.manifest_path(out).exists()               # nothing written
    assert not list(tmp_path.glob("*train.mindrecord*"))


def test_schema_follows_feature_table():
    schema = mr.mindrecord_schema()
    assert schema["all_atom_positions"]["shape"] == [-1, 37, 3]      # one variable dim: kept in shape
    assert schema["msa"]["shape"] == [-1] and schema["msa__shape"]["shape"] == [2]   # two: flattened + shape
    assert schema["resolution"] == {"type": "float32"}
    assert schema["sequence"] == {"type": "bytes"}
    assert "seq_length__shape" not in schema and schema["seq_length"] == {"type": "int32"}


def test_layout_grows_for_a_sample_larger_than_estimated(features_dir, tmp_path, monkeypatch):
    with np.load(features_dir / "2crb_A.npz") as z:
        small = {k: z[k] for k in z.files}
    small.update(msa=small["msa"][:50], deletion_matrix_int=small["deletion_matrix_int"][:50],
                 msa_species_identifiers=small["msa_species_identifiers"][:50], num_alignments=np.full(97, 50))
    np.savez(features_dir / "1abc_A.npz", **small)          # shard 0: fits a 1 MiB page; 2crb_A (shard 1) does not
    monkeypatch.setattr(mr, "estimate_nbytes", lambda path: 0)
    out = tmp_path / "train.mindrecord"
    manifest = mr.convert(features_dir, out, num_shards=2, progress=False)
    assert manifest["layout"]["page_size"] == 2 * mr.MIN_PAGE
    back = mr.read_samples(out)                               # one MindDataset over both shards: same layout
    assert back["1abc_A"]["msa"].shape == (50, 97) and back["2crb_A"]["msa"].shape == (868, 97)
