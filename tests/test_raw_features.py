"""Raw features (make-features / DataPipeline) against the AlphaFold reference fixture for 2crb chain A."""
import json

import numpy as np
import pytest

from helpers import reference_path, shared_path
from mindsponge_fold import cli
from mindsponge_fold.data import parsers, pipeline, templates


def _data(*parts):
    return shared_path("data", "openfold_testdata", *parts)


@pytest.fixture(scope="module")
def target():
    return json.loads(reference_path("config.json").read_text())["target"]


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(reference_path("raw_features.npz")))


def _write_fasta(tmp_path, target):
    path = tmp_path / "2crb_A.fasta"
    path.write_text(f">{target['pdb_id']}_{target['chain']}\n{target['sequence']}\n")
    return path


def assert_features_equal(ours: dict, ref: dict):
    assert sorted(ours) == sorted(ref)
    for name, expected in ref.items():
        got = np.asarray(ours[name])
        assert got.shape == expected.shape, name
        if expected.dtype.kind in "iuSb":
            assert got.dtype.kind == expected.dtype.kind, name
            np.testing.assert_array_equal(got, expected, err_msg=name)
        else:
            assert got.dtype == expected.dtype, name
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6, err_msg=name)


def test_make_features_command_equals_reference(tmp_path, target, reference, capsys):
    """Templates: 2crb_A itself (identity map), 4zey_A by BLOSUM62 global alignment; ground truth + resolution 2."""
    mmcifs = _data("mmcifs")
    out = tmp_path / "raw_features.npz"
    rc = cli.main(["make-features", "--fasta", str(_write_fasta(tmp_path, target)),
                   "--alignments-dir", str(_data("alignments", "2crb_A")),
                   "--template", f"{mmcifs / '2crb.cif'}:A:identity", "--template", f"{mmcifs / '4zey.cif'}:A",
                   "--ground-truth", f"{mmcifs / '2crb.cif'}:A", "--resolution", "2.0", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert "97 residues, 868 MSA rows, 2 templates" in capsys.readouterr().out
    assert_features_equal(dict(np.load(out)), reference)


def test_blosum62_alignment_equals_reference_map(target):
    seqres = {t: parsers_seqres(t) for t in ("2crb", "4zey")}
    q = target["sequence"]
    np.testing.assert_array_equal(templates.blosum62_query_to_template(q, seqres["4zey"]),
                                  target["templates"][1]["query_to_template"])
    np.testing.assert_array_equal(templates.blosum62_query_to_template(q, seqres["2crb"]),
                                  target["templates"][0]["query_to_template"])


def parsers_seqres(pdb_id):
    from mindsponge_fold.data import mmcif
    return mmcif.parse_mmcif(_data("mmcifs", f"{pdb_id}.cif")).chain_to_seqres["A"]


def test_explicit_mapping_file_and_pipeline_api(tmp_path, target, reference):
    """DataPipeline.process with the explicit query->template maps of config.json (JSON files), no labels."""
    maps = []
    for i, t in enumerate(target["templates"]):
        maps.append(tmp_path / f"map{i}.json")
        maps[-1].write_text(json.dumps({"query_to_template": t["query_to_template"]}))
    direct = (pipeline.DirectTemplate(str(_data("mmcifs", "2crb.cif")), "A",
                                      json.loads(maps[0].read_text())["query_to_template"]),
              pipeline.DirectTemplate(str(_data("mmcifs", "4zey.cif")), "A",
                                      json.loads(maps[1].read_text())["query_to_template"]))
    feats = pipeline.DataPipeline(direct_templates=direct).process(_write_fasta(tmp_path, target),
                                                                   _data("alignments", "2crb_A"))
    expected = {k: v for k, v in reference.items() if k not in ("all_atom_positions", "all_atom_mask", "resolution")}
    assert_features_equal(feats, expected)


def test_msa_dedup_counts(target):
    msas = [parsers.read_msa(_data("alignments", "2crb_A", f["file"])) for f in target["msa_files"]]
    assert [len(m) for m in msas] == [f["rows"] for f in target["msa_files"]]
    kept = [pipeline.make_msa_features(msas[:k + 1])["num_alignments"][0] for k in range(len(msas))]
    assert list(np.diff([0] + kept)) == [f["rows_kept_after_dedup"] for f in target["msa_files"]]
    assert kept[-1] == target["num_msa_rows_after_dedup"]


def test_hmmsearch_hits_to_templates_and_date_filter(reference, target):
    """hmmsearch hits (hmm_output.sto) + mmCIF dir: the self hit reproduces the reference template 0 exactly."""
    q = target["sequence"]
    hits = pipeline.read_template_hits(_data("alignments", "2crb_A", "hmm_output.sto"), q)
    featurizer = templates.TemplateHitFeaturizer(str(_data("mmcifs")), "2100-01-01", max_hits=4)
    result = featurizer.get_templates(q, hits[:40])
    names = list(result.features["template_domain_names"])
    assert names[:2] == [b"2crb_A", b"4zey_A"]
    for key in ("template_all_atom_positions", "template_all_atom_masks", "template_aatype", "template_sequence"):
        np.testing.assert_array_equal(result.features[key][0], reference[key][0], err_msg=key)
    # hmmsearch style: a repeated template sequence is kept once; no usable hit -> one all-zero placeholder.
    twice = featurizer.get_templates(q, [hits[0], hits[0]]).features
    assert list(twice["template_domain_names"]) == [b"2crb_A"]
    missing = [h for h in hits[:40] if h.name[:4] not in ("2crb", "4zey", "5kc1")]
    none = featurizer.get_templates(q, missing).features
    assert list(none["template_domain_names"]) == [b""] and not none["template_all_atom_masks"].any()
    # 4zey (released 2015-05-06) is dropped by a 2010 cutoff, 2crb (2005-11-20) is kept.
    old = templates.TemplateHitFeaturizer(str(_data("mmcifs")), "2010-01-01", max_hits=4)
    assert list(old.get_templates(q, hits[:40]).features["template_domain_names"]) == [b"2crb_A"]


def test_hhr_hits_to_templates():
    """pdb70_hits.hhr of another query: each template residue is the hit residue aligned to that query residue."""
    query = parsers.read_msa(_data("alignments", "bfd_uniclust_hits.a3m")).sequences[0]
    hits = parsers.parse_hhr(_data("alignments", "pdb70_hits.hhr").read_text())
    result = templates.TemplateHitFeaturizer(str(_data("mmcifs")), "2100-01-01").get_templates(query, hits)
    names = [n.decode() for n in result.features["template_domain_names"]]
    assert "2crb_A" in names and "4zey_A" in names and "1hf9_B" not in names   # no 1hf9.cif: skipped
    assert np.all(np.diff(result.features["template_sum_probs"][:, 0]) <= 0)   # best sum_probs first
    by_name = {h.name[:4].lower() + h.name.split()[0][4:]: h for h in hits}
    for i, name in enumerate(names):
        hit = by_name[name]
        tseq = result.features["template_sequence"][i].decode()
        for qi, ti in zip(hit.indices_query, hit.indices_hit):
            if qi >= 0 and ti >= 0:
                assert tseq[qi] == hit.hit_sequence[hit.indices_hit.index(ti)]
        mask = result.features["template_all_atom_masks"][i]
        assert mask[[k for k, c in enumerate(tseq) if c == "-"]].sum() == 0


def test_direct_templates_respect_max_template_date(tmp_path, target):
    """4zey (released 2015-05-06) is dropped by a 2010 cutoff; 2crb (2005-11-20) stays, with sum_probs 100."""
    mmcifs = _data("mmcifs")
    out = tmp_path / "raw.npz"
    assert cli.main(["make-features", "--fasta", str(_write_fasta(tmp_path, target)),
                     "--alignments-dir", str(_data("alignments", "2crb_A")), "--max-template-date", "2010-01-01",
                     "--template", f"{mmcifs / '4zey.cif'}:A", "--template", f"{mmcifs / '2crb.cif'}:A",
                     "--out", str(out)]) == 0
    feats = np.load(out)
    assert list(feats["template_domain_names"]) == [b"2crb_A"] and feats["template_sum_probs"].tolist() == [[100.0]]
    assert "resolution" not in feats and "all_atom_positions" not in feats
