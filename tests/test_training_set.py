"""make-training-set (AlphaFold 2 supplement 1.2.5 filters, clustering, resume, per-chain errors), the chain table
it writes, and the training templates' date / duplicate filters (supplement 1.2.3)."""
import os

import numpy as np
import pytest
from helpers import shared_path

from mindsponge_fold import cli
from mindsponge_fold.common.config import load_config
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data import mmcif, pipeline, templates
from mindsponge_fold.data import transforms as T
from mindsponge_fold.data import transforms_templates as tt
from mindsponge_fold.data import training_set as ts
from mindsponge_fold.data.chain_table import HEADER, ChainRecord, read_chain_table, write_chain_table
from mindsponge_fold.data.clustering import greedy_identity_clusters, sequence_identity
from mindsponge_fold.data.mindrecord import convert, load_sample, read_samples

GOOD = ("1psm_A", "2crb_A", "2q2k_A", "2q2k_B", "4zey_A")
BROKEN = "9bad_A"


def _data(*parts):
    return shared_path("data", "openfold_testdata", *parts)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """An mmCIF dir (1psm NMR, 2crb NMR, 2q2k X-ray with two identical chains, 4zey X-ray, a homolog of 2crb released
    later, 9bad a truncated copy of 2q2k) and an alignment dir with one sub-directory per chain (9bad_A reuses
    2q2k_A's alignments)."""
    root = tmp_path_factory.mktemp("training_inputs")
    cifs, alignments = root / "mmcifs", root / "alignments"
    cifs.mkdir()
    alignments.mkdir()
    for pdb in ("1psm", "2crb", "2q2k", "4zey"):
        os.symlink(_data("mmcifs", f"{pdb}.cif"), cifs / f"{pdb}.cif")
    text = _data("mmcifs", "2q2k.cif").read_text()
    (cifs / "9bad.cif").write_text(text[: len(text) * 2 // 5])
    for chain in GOOD:
        os.symlink(_data("alignments", chain), alignments / chain)
    os.symlink(_data("alignments", "2q2k_A"), alignments / BROKEN)
    (alignments / "notes.txt").write_text("not a chain directory\n")
    return cifs, alignments


@pytest.fixture(scope="module")
def built(inputs, tmp_path_factory):
    cifs, alignments = inputs
    out = tmp_path_factory.mktemp("training_set") / "out"
    status = cli.main(["make-training-set", "--mmcif-dir", str(cifs), "--alignment-dir", str(alignments),
                       "--out", str(out), "--workers", "2", "--no-progress"])
    return status, out


def _report(out):
    lines = (out / "report.tsv").read_text().splitlines()
    assert lines[0] == "chain_id\tstatus\treason"
    return {c: (s, r) for c, s, r in (line.split("\t") for line in lines[1:])}


def test_chain_table_round_trip_and_bad_rows(tmp_path):
    rows = [ChainRecord("1psm_a", 38, None, "1990-01-01", "c1", 2),
            ChainRecord("2q2k_A", 70, 2.5, "2008-01-01", "c1", 2)]
    path = tmp_path / "chains.tsv"
    write_chain_table(path, rows)
    assert path.read_text().splitlines()[0] == HEADER
    assert HEADER.split("\t") == ["chain_id", "length", "resolution", "release_date", "cluster_id", "cluster_size"]
    assert read_chain_table(path) == rows
    path.write_text(HEADER + "\n2q2k_A\t70\t2.5\t2008/01/01\tc1\t1\n")
    with pytest.raises(InputError, match=r"chains.tsv:2: release_date"):
        read_chain_table(path)


def test_good_chains_written_and_a_broken_mmcif_reported(built, inputs):
    status, out = built
    assert status == 0
    report = _report(out)
    assert set(report) == {*GOOD, BROKEN}
    assert report[BROKEN][0] == "error" and "9bad.cif" in report[BROKEN][1] and "truncated" in report[BROKEN][1]
    assert all(report[c][0] == "ok" for c in GOOD)
    assert sorted(p.name for p in (out / "features").iterdir()) == [f"{c}.npz" for c in GOOD]
    rows = {r.chain_id: r for r in read_chain_table(out / "chains.tsv")}
    assert set(rows) == set(GOOD)
    assert rows["1psm_A"].resolution is None and rows["2q2k_A"].resolution == pytest.approx(3.0)
    assert rows["2crb_A"].release_date == mmcif.parse_mmcif(inputs[0] / "2crb.cif").header["release_date"]
    # built-in clustering: the two identical chains of 2q2k share a cluster; the unrelated chains do not
    assert rows["2q2k_A"].cluster_id == rows["2q2k_B"].cluster_id and rows["2q2k_A"].cluster_size == 2
    assert len({rows[c].cluster_id for c in ("1psm_A", "2crb_A", "2q2k_A")}) == 3
    assert rows["1psm_A"].cluster_size == 1 and rows["2q2k_A"].length == 70
    assert rows["4zey_A"].cluster_id == rows["2crb_A"].cluster_id and rows["2crb_A"].cluster_size == 2


def test_features_are_labeled_samples_for_make_mindrecord(built, inputs, tmp_path):
    _, out = built
    features, entry = load_sample("2q2k_B", out / "features" / "2q2k_B.npz")
    assert entry["has_labels"] and entry["num_msa"] > 1
    truth = pipeline.make_ground_truth_features(features["sequence"][0].decode(), inputs[0] / "2q2k.cif", "B")
    for key in ("all_atom_positions", "all_atom_mask", "resolution"):
        np.testing.assert_array_equal(features[key], truth[key], err_msg=key)
    manifest = convert(out / "features", tmp_path / "train.mindrecord", progress=False)
    assert sum(s["num_samples"] for s in manifest["shards"]) == len(GOOD)
    samples = read_samples(tmp_path / "train.mindrecord")
    assert samples["1psm_A"]["release_date"][0] == b"1995-02-07"
    assert "template_release_date" in samples["2crb_A"]


def test_own_entry_offered_as_template_is_rejected(built):
    """1psm_A's template search (hmm_output.sto) lists 1psm_A itself; the training set does not use it. 4zey_A's
    hits include 2crb_A (released 2005, before 4zey's 2015): that one is its template, with its date."""
    _, out = built
    with np.load(out / "features" / "4zey_A.npz") as z:
        assert list(z["template_domain_names"]) == [b"2crb_A"]
        assert list(z["template_release_date"]) == [b"2005-11-20"] and z["release_date"][0] == b"2015-05-06"
    hits = pipeline.read_template_hits(_data("alignments", "1psm_A", "hmm_output.sto"),
                                       mmcif.parse_mmcif(_data("mmcifs", "1psm.cif")).chain_to_seqres["A"])
    assert any(h.name.startswith("1psm_A") for h in hits)
    with np.load(out / "features" / "1psm_A.npz") as z:
        assert not any(bytes(n).startswith(b"1psm") for n in z["template_domain_names"])
        assert z["release_date"][0] == b"1995-02-07"


def test_template_duplicate_and_date_filters():
    """2crb_A's hits in the mmCIF dir: itself (a duplicate of the query, AlphaFold's > 95% sub-sequence rule) and
    4zey_A (released 2015, after 2crb's 2005-11-20). Without the filters both are templates."""
    query = mmcif.parse_mmcif(_data("mmcifs", "2crb.cif")).chain_to_seqres["A"]
    hits = [h for h in pipeline.read_template_hits(_data("alignments", "2crb_A", "hmm_output.sto"), query)
            if h.name[:4] in ("2crb", "4zey")]
    assert templates.is_duplicate_of_query(hits[0].hit_sequence, query) and hits[0].name.startswith("2crb_A")
    plain = templates.TemplateHitFeaturizer(str(_data("mmcifs")), "2100-01-01")
    assert list(plain.get_templates(query, hits).features["template_domain_names"]) == [b"2crb_A", b"4zey_A"]
    dedup = templates.TemplateHitFeaturizer(str(_data("mmcifs")), "2100-01-01", max_subsequence_ratio=0.95,
                                            record_release_dates=True)
    kept = dedup.get_templates(query, hits).features
    assert list(kept["template_domain_names"]) == [b"4zey_A"]
    assert kept["template_release_date"][0].decode() == mmcif.parse_mmcif(_data("mmcifs", "4zey.cif")).header[
        "release_date"]
    settings = ts.TrainingSetSettings(str(_data("mmcifs")), "", "")
    training = ts._featurizer(settings, "2005-11-20").get_templates(query, hits).features
    assert not any(n for n in training["template_domain_names"])       # only the empty placeholder is left


def test_loader_drops_own_entry_and_later_templates():
    f = {"domain_name": np.array([b"1abc_A"]), "release_date": np.array([b"2005-01-01"]),
         "template_aatype": np.zeros((4, 5, 22), np.float32),
         "template_domain_names": np.array([b"1abc_B", b"2xyz_A", b"3def_A", b"4ghi_A"]),
         "template_release_date": np.array([b"2001-01-01", b"2001-01-01", b"2005-01-01", b""])}
    np.testing.assert_array_equal(tt.training_template_rows(f), [1, 3])
    del f["release_date"]                      # no dates on the sample: only the own-entry rule applies
    np.testing.assert_array_equal(tt.training_template_rows(f), [1, 2, 3])
    selected = tt.select_templates(dict(f), 4, subsample=False, filter_rows=True)
    assert list(selected["template_domain_names"]) == [b"2xyz_A", b"3def_A", b"4ghi_A"]
    assert T.settings_from_config(load_config("train_initial"), "train").filter_templates
    assert not T.settings_from_config(load_config("model_1_ptm"), "train").filter_templates


def test_filters_with_the_papers_defaults():
    s = ts.TrainingSetSettings("", "", "")
    assert (s.max_resolution, s.max_release_date, s.max_single_residue_fraction) == (9.0, "2018-04-30", 0.8)
    seq = "ACDEFGHIKLMNPQRSTVWY"
    assert ts.chain_filter_reason(seq, 8.9, "2018-04-29", s) is None
    assert ts.chain_filter_reason(seq, 0.0, "2010-01-01", s) is None                 # NMR: no resolution
    assert "resolution 9" in ts.chain_filter_reason(seq, 9.0, "2010-01-01", s)
    assert "released 2018-04-30" in ts.chain_filter_reason(seq, 2.0, "2018-04-30", s)
    assert "fewer than --min-length" in ts.chain_filter_reason("ACDEFGHIK", 2.0, "2010-01-01", s)
    no_q = seq.replace("Q", "")                                                      # 19 residue types
    assert "residue Q is 81%" in ts.chain_filter_reason("Q" * 81 + no_q, 2.0, "2010-01-01", s)
    assert ts.chain_filter_reason("Q" * 80 + no_q + "A", 2.0, "2010-01-01", s) is None   # exactly 80%: kept


def test_identity_clustering_needs_coverage():
    seqs = {c: mmcif.parse_mmcif(_data("mmcifs", f"{c[:4]}.cif")).chain_to_seqres["A"]
            for c in ("3zee_A", "4i6p_A", "1psm_A", "2crb_A")}
    seqs["5kc1_A"] = mmcif.parse_mmcif(_data("mmcifs", "5kc1.cif")).chain_to_seqres["A"]
    identity, coverage = sequence_identity(seqs["1psm_A"], seqs["5kc1_A"])
    assert identity > 0.4 and coverage < 0.2              # scattered identities of a short chain, not a homolog
    clusters = greedy_identity_clusters(seqs)
    assert clusters["3zee_A"] == clusters["4i6p_A"] == "4i6p_A"
    assert len(set(clusters.values())) == 4
    assert len(set(greedy_identity_clusters(seqs, min_coverage=1.0).values())) == 5     # 3zee: 84 of 4i6p's 88


def test_bad_option_is_one_line(inputs, tmp_path, capsys):
    cifs, alignments = inputs
    status = cli.main(["make-training-set", "--mmcif-dir", str(cifs), "--alignment-dir", str(alignments),
                       "--out", str(tmp_path / "o"), "--max-single-residue-fraction", "2"])
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1 and "--max-single-residue-fraction" in err
    bad = tmp_path / "clusters.txt"
    bad.write_text("2Q2K\n")
    status = cli.main(["make-training-set", "--mmcif-dir", str(cifs), "--alignment-dir", str(alignments),
                       "--out", str(tmp_path / "o"), "--cluster-file", str(bad)])
    err = capsys.readouterr().err.strip()
    assert status == 2 and "clusters.txt:1" in err and "PDBID_ENTITYID" in err and not (tmp_path / "o").exists()


def test_resume_cluster_file_and_release_date_filter(built, inputs, tmp_path, capsys):
    """Runs last: reruns on the same output. Unchanged chains are skipped (their files untouched; the error chain
    is retried); a cluster file changes only the table; a release-date cutoff filters the 2008 chains."""
    _, out = built
    cifs, alignments = inputs
    mtimes = {p.name: p.stat().st_mtime_ns for p in (out / "features").iterdir()}
    clusters = tmp_path / "clusters-by-entity-40.txt"
    clusters.write_text("2Q2K_2 1PSM_1\n2CRB_1 7XYZ_1\n")
    base = ["make-training-set", "--mmcif-dir", str(cifs), "--alignment-dir", str(alignments), "--out", str(out),
            "--no-progress"]
    assert cli.main(base + ["--cluster-file", str(clusters)]) == 0
    captured = capsys.readouterr()
    assert "5 chains written (3 clusters), 0 filtered, 1 errors; 1 built, 5 unchanged" in captured.out
    assert "1 accepted chain(s) have an entity the cluster file does not list" in captured.err
    assert {p.name: p.stat().st_mtime_ns for p in (out / "features").iterdir()} == mtimes
    rows = {r.chain_id: r for r in read_chain_table(out / "chains.tsv")}
    assert {c: (rows[c].cluster_id, rows[c].cluster_size) for c in rows} == {
        "1psm_A": ("2Q2K_2", 3), "2q2k_A": ("2Q2K_2", 3), "2q2k_B": ("2Q2K_2", 3), "2crb_A": ("2CRB_1", 1),
        "4zey_A": ("4ZEY_1", 1)}                # not in the file: a cluster of its own (and a warning)
    assert cli.main(base + ["--max-release-date", "2006-01-01", "--chains", "2q2k_A", "2q2k_B", "1psm_A"]) == 0
    report = _report(out)
    assert set(report) == {"2q2k_A", "2q2k_B", "1psm_A"}
    assert report["2q2k_A"] == ("filtered", "released 2008-02-05, not before --max-release-date 2006-01-01")
    assert [r.chain_id for r in read_chain_table(out / "chains.tsv")] == ["1psm_A"]
    assert not (out / "features" / "2q2k_A.npz").exists()
