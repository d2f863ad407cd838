"""Malformed data-pipeline inputs: one-line InputError naming the file (and line), nothing written."""
import re

import pytest

from helpers import shared_path
from mindsponge_fold import cli
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data import mmcif, parsers

QUERY = "GSSGSSGMEGPLNLAHQQSRRADRLLAAGKYEEAISCHRKATTYLSEAMKLTESEQAHLSLELQRDSHMKQLLLIQERWKRAKREERLKAHSGPSSG"


def _one_line(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_truncated_mmcif(tmp_path):
    text = shared_path("data", "openfold_testdata", "mmcifs", "4zey.cif").read_text()
    cut = tmp_path / "cut.cif"
    cut.write_text(text[: len(text) // 2])   # ends in the middle of an _atom_site row
    n_lines = cut.read_text().count("\n")
    with pytest.raises(InputError) as err:
        mmcif.parse_mmcif(cut)
    assert re.fullmatch(rf"{re.escape(str(cut))}:{n_lines}: truncated or malformed mmCIF: the _atom_site loop has "
                        r"columns of \d+ and \d+ values \(the file ends or breaks inside a row\)", _one_line(err))
    early = tmp_path / "early.cif"
    early.write_text(text[:20000])           # before any coordinates
    with pytest.raises(InputError, match=rf"^{re.escape(str(early))}:\d+: truncated or incomplete mmCIF: no "
                                         r"_atom_site.*records"):
        mmcif.parse_mmcif(early)


def test_a3m_rows_of_different_lengths(tmp_path):
    path = tmp_path / "bad.a3m"
    path.write_text(">query\nACDE\n>ok\nAC-E\n>short one\nACkkD\n")
    with pytest.raises(InputError) as err:
        parsers.read_msa(path)
    assert _one_line(err) == (f"{path}:5: row 'short one' has 3 aligned columns but the query has 4 (rows of an A3M "
                              "must have the same number of upper-case/'-' characters)")


def test_stockholm_rows_of_different_lengths(tmp_path):
    path = tmp_path / "bad.sto"
    path.write_text("# STOCKHOLM 1.0\nquery ACDE\nhit1  AC-\n//\n")
    with pytest.raises(InputError, match=rf"^{re.escape(str(path))}:3: sequence 'hit1' is 3 columns long but the "
                                         r"query is 4"):
        parsers.read_msa(path)


@pytest.mark.parametrize("name,content", [("empty.sto", "# STOCKHOLM 1.0\n//\n"), ("empty.a3m", "\n")])
def test_empty_msa(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError) as err:
        parsers.read_msa(path)
    assert _one_line(err).startswith(f"{path}: empty MSA: ")


def test_unknown_residue_letters(tmp_path):
    a3m = tmp_path / "star.a3m"
    a3m.write_text(">query\nACDE\n>hit\nAC\nD*\n")
    with pytest.raises(InputError) as err:
        parsers.read_msa(a3m)
    assert _one_line(err) == f"{a3m}:5: row 'hit': invalid character '*' at position 4"
    sto = tmp_path / "digit.sto"
    sto.write_text("# STOCKHOLM 1.0\nquery ACDE\nhit   AC1E\n//\n")
    with pytest.raises(InputError) as err:
        parsers.read_msa(sto)
    assert _one_line(err) == f"{sto}:3: sequence 'hit': invalid character '1' at column 3"
    fasta = tmp_path / "q.fasta"
    fasta.write_text(">q\nGSSG\nSS1G\n")
    with pytest.raises(InputError) as err:
        parsers.parse_query_fasta(fasta.read_text(), fasta)
    assert _one_line(err) == (f"{fasta}:3: record 'q': invalid residue letter '1' at position 7 "
                              "(expected upper-case amino-acid letters)")


def test_fasta_without_header(tmp_path):
    fasta = tmp_path / "noheader.fasta"
    fasta.write_text("\n" + QUERY + "\n")
    with pytest.raises(InputError) as err:
        parsers.parse_query_fasta(fasta.read_text(), fasta)
    assert _one_line(err) == f"{fasta}:2: FASTA data before the first '>' header line"


def test_make_features_reports_bad_input_in_one_line_and_writes_nothing(tmp_path, capsys):
    fasta = tmp_path / "noheader.fasta"
    fasta.write_text(QUERY + "\n")
    out = tmp_path / "raw.npz"
    align = shared_path("data", "openfold_testdata", "alignments", "2crb_A")
    assert cli.main(["make-features", "--fasta", str(fasta), "--alignments-dir", str(align), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"mindsponge-fold make-features: error: {fasta}:1: FASTA data before the first '>' header line"
    assert list(tmp_path.iterdir()) == [fasta]
    # An MSA of another protein (wrong width) names the MSA file.
    fasta.write_text(">short\nACDEFGHIK\n")
    assert cli.main(["make-features", "--fasta", str(fasta), "--alignments-dir", str(align), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"uniref90_hits.sto: MSA has 97 columns but the query in {fasta} has 9 residues")
    assert not out.exists()


def test_template_mapping_out_of_range(tmp_path, capsys):
    fasta = tmp_path / "q.fasta"
    fasta.write_text(">2crb_A\n" + QUERY + "\n")
    cif = shared_path("data", "openfold_testdata", "mmcifs", "4zey.cif")
    bad_map = tmp_path / "map.json"
    bad_map.write_text(str(list(range(97))))   # 4zey_A has 84 residues
    out = tmp_path / "raw.npz"
    align = shared_path("data", "openfold_testdata", "alignments", "2crb_A")
    assert cli.main(["make-features", "--fasta", str(fasta), "--alignments-dir", str(align),
                     "--template", f"{cif}:A:{bad_map}", "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "4zey.cif: query->template map must have 97 entries in [-1, 83], got shape (97,) range [0, 96]")
    assert not out.exists()


def _alignments(*parts):
    return shared_path("data", "openfold_testdata", "alignments", *parts)


def _make_features(tmp_path, fasta, align, *extra):
    out = tmp_path / "raw.npz"
    status = cli.main(["make-features", "--fasta", str(fasta), "--alignments-dir", str(align), "--out", str(out),
                       *extra])
    return status, out


def test_template_hits_of_another_query_are_refused(tmp_path, capsys):
    """An .hhr computed for another query used to place its templates from query residue 0 (str.find gave -1); an
    hmmsearch .sto of another query spans another number of profile columns. Both: one line naming the hit file."""
    fasta = tmp_path / "q.fasta"
    fasta.write_text(">2crb_A\n" + QUERY + "\n")
    mmcifs = shared_path("data", "openfold_testdata", "mmcifs")
    hhr = _alignments("pdb70_hits.hhr")                     # hits of the 73-residue query of alignments/*.a3m
    status, out = _make_features(tmp_path, fasta, _alignments("2crb_A"), "--template-hits", str(hhr),
                                 "--mmcif-dir", str(mmcifs))
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1, err
    assert err.startswith(f"mindsponge-fold make-features: error: {hhr}: template hit 1 (1HF9_B) aligns query "
                          "residue 7 as 'A' but the query has 'G'")
    assert err.endswith("the hits were computed for another query") and not out.exists()
    # hmmsearch hits of 2crb_A given with the 1psm_A query (and its own alignments)
    psm = parsers.read_msa(_alignments("1psm_A", "bfd_uniclust_hits.a3m")).sequences[0]
    fasta.write_text(">1psm_A\n" + psm + "\n")
    sto = _alignments("2crb_A", "hmm_output.sto")
    status, out = _make_features(tmp_path, fasta, _alignments("1psm_A"), "--template-hits", str(sto),
                                 "--mmcif-dir", str(mmcifs))
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1, err
    assert f"{sto}: template hit 1 (2crb_A) spans 97 profile columns but the query has {len(psm)} residues" in err
    assert not out.exists()


def test_mapping_of_a_hit_of_another_query_is_an_error_not_an_offset():
    from mindsponge_fold.data import templates
    hits = parsers.parse_hhr(_alignments("pdb70_hits.hhr").read_text())
    own_query = parsers.read_msa(_alignments("bfd_uniclust_hits.a3m")).sequences[0]
    assert templates.mapping_from_hit(hits[0], own_query)          # its own query: fine
    with pytest.raises(templates.TemplateError, match="does not occur in the query sequence"):
        templates.mapping_from_hit(hits[0], QUERY)


def test_msa_whose_first_row_is_not_the_query(tmp_path, capsys):
    fasta = tmp_path / "q.fasta"
    fasta.write_text(">2crb_A\n" + QUERY + "\n")
    align = tmp_path / "aln"
    align.mkdir()
    other = QUERY[:20] + "W" + QUERY[21:]                    # same length, one residue differs
    a3m = align / "bfd_uniclust_hits.a3m"
    a3m.write_text(f">other protein\n{other}\n>hit\n{QUERY}\n")
    status, out = _make_features(tmp_path, fasta, align)
    err = capsys.readouterr().err.strip()
    assert status == 2 and len(err.splitlines()) == 1, err
    assert err == (f"mindsponge-fold make-features: error: {a3m}: the first row ('other protein') is not the query "
                   f"sequence of {fasta}: column 21 is 'W', the query has 'R' (an MSA's first row must be its query: "
                   "this alignment was computed for another sequence)")
    assert not out.exists()
    sto = align / "uniref90_hits.sto"                         # Stockholm too (the a3m now fine)
    a3m.write_text(f">query\n{QUERY}\n")
    sto.write_text(f"# STOCKHOLM 1.0\nother {other}\nhit   {QUERY}\n//\n")
    status, out = _make_features(tmp_path, fasta, align)
    err = capsys.readouterr().err.strip()
    assert status == 2 and f"{sto}: the first row ('other') is not the query sequence" in err
    # AlphaFold's normalisation: insertions (a3m lower case, Stockholm query-gap columns) are not query residues
    sto.write_text(f"# STOCKHOLM 1.0\nquery {QUERY[:30]}--{QUERY[30:]}\nhit   {QUERY[:30]}ac{QUERY[30:]}\n//\n")
    a3m.write_text(f">query\n{QUERY[:10]}kl{QUERY[10:]}\n>hit\n{QUERY}\n")
    status, out = _make_features(tmp_path, fasta, align)
    assert status == 0 and out.exists(), capsys.readouterr().err


def test_fasta_with_a_byte_order_mark(tmp_path):
    """Some editors start a UTF-8 file with a byte-order mark: it is not 'FASTA data before the first >'."""
    from mindsponge_fold.data.pipeline import read_query
    fasta = tmp_path / "bom.fasta"
    fasta.write_bytes(b"\xef\xbb\xbf>2crb_A some protein\n" + QUERY.encode() + b"\n")
    assert read_query(fasta) == (QUERY, "2crb_A some protein")
    assert parsers.parse_query_fasta("\ufeff>q\nACDE\n") == [("q", "ACDE")]
