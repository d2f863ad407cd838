"""The real search binaries (hmmer, hhsuite, kalign) on small databases built here from real sequences.

Nothing is mocked: jackhmmer searches a FASTA database of sequences taken from the openfold test MSAs, hhblits and
hhsearch a tiny HH-suite database built with ffindex_build/hhmake/cstranslate from four of those MSAs, hmmsearch a
pdb_seqres-style FASTA of the test mmCIFs' chains. Template hits then go through the mmCIF template featurizer.
"""
import dataclasses
import shutil

import numpy as np
import pytest

from helpers import reference_path, shared_path
from mindsponge_fold import cli
from mindsponge_fold.common.errors import ToolError
from mindsponge_fold.data import mmcif, parsers, templates
from mindsponge_fold.data.tools import HHBlits, HHSearch, Hmmsearch, Jackhmmer, Kalign
from mindsponge_fold.data.tools.hhsuite_db import build_hhsuite_database

pytestmark = pytest.mark.tools

QUERY = "GSSGSSGMEGPLNLAHQQSRRADRLLAAGKYEEAISCHRKATTYLSEAMKLTESEQAHLSLELQRDSHMKQLLLIQERWKRAKREERLKAHSGPSSG"
FAMILIES = ("2crb_A", "4zey_A", "3zee_A", "5kc1_A", "3u8v_A", "1psm_A")


def _require(*binaries):
    missing = [b for b in binaries if shutil.which(b) is None]
    if missing:
        pytest.skip(f"search binaries not installed: {', '.join(missing)} (run scripts/setup.sh --tools)")


def _alignment(*parts):
    """alignments/<family>/bfd_uniclust_hits.a3m, or any path under alignments/."""
    if len(parts) == 1 and "_" in parts[0] and "." not in parts[0]:
        parts = (parts[0], "bfd_uniclust_hits.a3m")
    return shared_path("data", "openfold_testdata", "alignments", *parts)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("tools")


@pytest.fixture(scope="module")
def query_fasta(work):
    path = work / "2crb_A.fasta"
    path.write_text(f">2crb_A\n{QUERY}\n")
    return path


@pytest.fixture(scope="module")
def fasta_db(work):
    """Ungapped rows 2..40 of six families' BFD MSAs: a small sequence database (~230 sequences)."""
    out, family_of = [], {}
    for fam in FAMILIES:
        seqs, descs = parsers.parse_fasta(_alignment(fam).read_text())
        for seq, desc in list(zip(seqs, descs))[1:40]:
            name = desc.split()[0]
            if name not in family_of:
                family_of[name] = fam
                out.append(f">{name}\n{seq.replace('-', '').upper()}\n")
    path = work / "seqdb.fasta"
    path.write_text("".join(out))
    return path, family_of


@pytest.fixture(scope="module")
def hh_db(work):
    _require("hhblits", "hhsearch", "hhmake", "ffindex_build", "ffindex_apply")
    msas = {}
    for fam in FAMILIES[:4]:
        seqs, descs = parsers.parse_fasta(_alignment(fam).read_text())
        rows = [f">{fam if i == 0 else d}\n{s}\n" for i, (s, d) in enumerate(zip(seqs[:60], descs[:60]))]
        msas[fam] = "".join(rows)
    return build_hhsuite_database(msas, work / "hhdb" / "tiny")


@pytest.fixture(scope="module")
def seqres_db(work):
    """pdb_seqres.txt-style FASTA ('>4zey_A mol:protein length:84  ...') of every chain of the test mmCIFs."""
    lines = []
    for cif in sorted(shared_path("data", "openfold_testdata", "mmcifs").glob("*.cif")):
        m = mmcif.parse_mmcif(cif)
        for chain, seq in m.chain_to_seqres.items():
            lines.append(f">{m.file_id}_{chain} mol:protein length:{len(seq)}  test chain\n{seq}\n")
    path = work / "pdb_seqres.txt"
    path.write_text("".join(lines))
    return path


def _reference_template0():
    return {k: v[0] for k, v in np.load(reference_path("raw_features.npz")).items() if k.startswith("template_")}


def test_jackhmmer_search_and_cache(work, query_fasta, fasta_db):
    _require("jackhmmer")
    db, family_of = fasta_db
    cache = work / "cache"
    runner = Jackhmmer(str(db), cache_dir=str(cache))
    first = runner.query(str(query_fasta))
    msa = parsers.parse_stockholm(first["sto"], "jackhmmer output")
    assert msa.sequences[0] == QUERY and msa.num_columns == 97
    hit_families = [family_of[d.split("/")[0]] for d in msa.descriptions[1:]]
    own = sum(f in ("2crb_A", "4zey_A") for f in hit_families)   # both chains are NRBF2
    assert own >= 30 and own / len(hit_families) > 0.9   # NRBF2 homologues, not the unrelated families
    assert not first["cached"] and len(list((cache / "jackhmmer").glob("*.json"))) == 1
    second = runner.query(str(query_fasta))
    assert second["cached"] and second["sto"] == first["sto"]
    other = work / "other.fasta"
    other.write_text(f">x\n{QUERY[10:80]}\n")
    assert not runner.query(str(other))["cached"]            # other input, other key
    assert len(list((cache / "jackhmmer").glob("*.json"))) == 2
    assert parsers.parse_stockholm(runner.query(str(query_fasta), max_sequences=5)["sto"]).sequences == \
        msa.sequences[:5]


def test_tool_errors(work, query_fasta, fasta_db):
    _require("jackhmmer")
    with pytest.raises(ToolError, match=r"^jackhmmer: binary 'jackhmmer-missing' not found on PATH; install it"):
        Jackhmmer(str(fasta_db[0]), binary_path="jackhmmer-missing")
    with pytest.raises(ToolError, match=r"^jackhmmer: database '/nonexistent/uniref90\.fasta' not found"):
        Jackhmmer("/nonexistent/uniref90.fasta")
    with pytest.raises(ToolError, match=r"^hhblits: database '/nonexistent/bfd' not found \(no files"):
        HHBlits(["/nonexistent/bfd"])
    bad = work / "bad.fasta"
    bad.write_text("this is not a FASTA database\n")
    with pytest.raises(ToolError, match=r"^jackhmmer failed \(exit status 1\); stderr tail: .*bad\.fasta is empty "
                                        r"or misformatted"):
        Jackhmmer(str(bad)).query(str(query_fasta))
    with pytest.raises(ToolError, match=r"^jackhmmer timed out after 0\.001 s"):
        Jackhmmer(str(fasta_db[0]), timeout=0.001).query(str(query_fasta))


def test_hhblits_and_hhsearch_templates(hh_db, query_fasta):
    a3m = HHBlits([hh_db], n_iter=2).query(str(query_fasta))["a3m"]
    msa = parsers.parse_a3m(a3m, "hhblits output")
    assert msa.sequences[0] == QUERY and len(msa) > 60 and msa.deletion_matrix.shape == (len(msa), 97)
    searcher = HHSearch([hh_db])
    hits = searcher.get_template_hits(searcher.query(a3m), QUERY)
    names = [h.name.split()[0] for h in hits]
    assert names[:2] == ["2crb_A", "4zey_A"] and hits[0].aligned_cols == 97
    featurizer = templates.TemplateHitFeaturizer(str(shared_path("data", "openfold_testdata", "mmcifs")),
                                                 "2100-01-01", max_hits=2)
    result = featurizer.get_templates(QUERY, hits)
    assert list(result.features["template_domain_names"]) == [b"2crb_A", b"4zey_A"]
    ref = _reference_template0()
    for key in ("template_all_atom_positions", "template_all_atom_masks", "template_aatype", "template_sequence"):
        np.testing.assert_array_equal(result.features[key][0], ref[key], err_msg=key)


def test_hmmbuild_hmmsearch_templates(seqres_db):
    _require("hmmsearch", "hmmbuild")
    sto = _alignment("2crb_A", "uniref90_hits.sto").read_text()
    sto = parsers.remove_empty_columns_from_stockholm(parsers.deduplicate_stockholm(sto))
    searcher = Hmmsearch(str(seqres_db))
    hits = searcher.get_template_hits(searcher.query(sto), QUERY)
    assert [h.name for h in hits[:2]] == ["2crb_A", "4zey_A"]
    featurizer = templates.TemplateHitFeaturizer(str(shared_path("data", "openfold_testdata", "mmcifs")),
                                                 "2100-01-01", max_hits=4)
    result = featurizer.get_templates(QUERY, hits)
    ref = _reference_template0()
    np.testing.assert_array_equal(result.features["template_all_atom_positions"][0],
                                  ref["template_all_atom_positions"])
    assert result.features["template_sequence"][0] == ref["template_sequence"]


def test_kalign_realigns_a_hit_that_differs_from_the_mmcif():
    _require("kalign")
    a3m = Kalign().align(["GSSGSSGMEGPLNLAHQQSRRADRLL", "GSMEGPLNLAHQQSRRADRLL"])
    aligned = parsers.parse_a3m(a3m).sequences
    assert [s.replace("-", "") for s in aligned] == ["GSSGSSGMEGPLNLAHQQSRRADRLL", "GSMEGPLNLAHQQSRRADRLL"]
    assert aligned[1].endswith("MEGPLNLAHQQSRRADRLL") and aligned[0].endswith("MEGPLNLAHQQSRRADRLL")
    # A 4zey hit whose sequence has a substitution is not found in the mmCIF: realigned with kalign.
    hits = parsers.parse_hhr(_alignment("pdb70_hits.hhr").read_text())
    query = parsers.read_msa(_alignment("bfd_uniclust_hits.a3m")).sequences[0]
    hit = next(h for h in hits if h.name.startswith("4ZEY_A"))
    letters = [i for i, c in enumerate(hit.hit_sequence) if c != "-"]
    mutated = list(hit.hit_sequence)
    mutated[letters[3]] = "W"   # 19/20 identical: above AlphaFold's 90% realignment threshold
    bad_hit = dataclasses.replace(hit, hit_sequence="".join(mutated), aligned_cols=40)
    featurizer = templates.TemplateHitFeaturizer(str(shared_path("data", "openfold_testdata", "mmcifs")),
                                                 "2100-01-01", kalign=Kalign())
    features, error, warning = featurizer.process_hit(query, bad_hit)
    assert error is None and "realigned the template to the actual sequence" in warning
    good, _, good_warning = featurizer.process_hit(query, dataclasses.replace(hit, aligned_cols=40))
    assert good_warning is None
    np.testing.assert_array_equal(features["template_all_atom_positions"], good["template_all_atom_positions"])
    aligned_q = [i for i, c in enumerate(features["template_sequence"].decode()) if c != "-"]
    assert len(aligned_q) == len(letters)


def test_make_features_runs_missing_searches(work, query_fasta, fasta_db, hh_db, seqres_db, capsys):
    """Empty alignment directory: jackhmmer (uniref90, mgnify), hhblits (bfd), hmmsearch (templates) all run."""
    _require("jackhmmer", "hmmsearch", "hmmbuild", "kalign")
    msa_dir = work / "msas"
    msa_dir.mkdir()
    out = work / "raw.npz"
    argv = ["make-features", "--fasta", str(query_fasta), "--alignments-dir", str(msa_dir), "--out", str(out),
            "--uniref90-database", str(fasta_db[0]), "--mgnify-database", str(fasta_db[0]),
            "--bfd-database", hh_db, "--pdb-seqres-database", str(seqres_db),
            "--mmcif-dir", str(shared_path("data", "openfold_testdata", "mmcifs")), "--max-templates", "2",
            "--tool-cache-dir", str(work / "cache2")]
    assert cli.main(argv) == 0, capsys.readouterr().err
    assert sorted(p.name for p in msa_dir.iterdir()) == ["bfd_uniclust_hits.a3m", "mgnify_hits.sto",
                                                          "pdb_hits.sto", "uniref90_hits.sto"]
    feats = np.load(out)
    uniref = parsers.read_msa(msa_dir / "uniref90_hits.sto")
    # mgnify searched the same database: every one of its rows is a duplicate of a uniref90 row
    assert feats["msa"].shape[0] == len(set(uniref.sequences) | set(parsers.read_msa(msa_dir / "bfd_uniclust_hits.a3m")
                                                                      .sequences))
    assert list(feats["template_domain_names"]) == [b"2crb_A", b"4zey_A"]
