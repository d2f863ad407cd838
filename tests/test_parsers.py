"""FASTA / A3M / Stockholm / HHR / hmmsearch parsers and species identifiers (mindsponge_fold.data.parsers)."""
import numpy as np
import pytest

from helpers import shared_path
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data import parsers
from mindsponge_fold.data.msa_identifiers import species_id

QUERY_2CRB = "GSSGSSGMEGPLNLAHQQSRRADRLLAAGKYEEAISCHRKATTYLSEAMKLTESEQAHLSLELQRDSHMKQLLLIQERWKRAKREERLKAHSGPSSG"


def _alignments(*parts):
    return shared_path("data", "openfold_testdata", "alignments", *parts)


def test_fasta_multi_record_and_blank_lines():
    text = "\n>first one\nACDE\nFG\n\n>second\nKLM\n>empty\n"
    seqs, descs = parsers.parse_fasta(text)
    assert seqs == ["ACDEFG", "KLM", ""]
    assert descs == ["first one", "second", "empty"]


def test_query_fasta_maps_nothing_silently():
    [(desc, seq)] = parsers.parse_query_fasta(">q\nACDBZX\n")
    assert (desc, seq) == ("q", "ACDBZX")   # B/Z/X are letters: they become X in aatype, not an error
    with pytest.raises(InputError, match=r"f\.fa:3: record 'q': invalid residue letter '\*' at position 7"):
        parsers.parse_query_fasta(">q\nACD\nACD*\n", "f.fa")
    with pytest.raises(InputError, match=r"expected one sequence, found 2 records"):
        parsers.parse_query_fasta(">a\nAC\n>b\nDE\n", "two.fa")


def test_a3m_deletions_by_hand():
    # query ACDE; row 2 has 'xy' inserted before column 2 and 'z' before column 4, plus a trailing insertion.
    text = ">query\nACDE\n>hit1 some description\nAxyC-zEw\n>hit2\n-CDE\n"
    msa = parsers.parse_a3m(text, "hand.a3m")
    assert msa.sequences == ["ACDE", "AC-E", "-CDE"]
    np.testing.assert_array_equal(msa.deletion_matrix, [[0, 0, 0, 0], [0, 2, 0, 1], [0, 0, 0, 0]])
    assert msa.descriptions == ["query", "hit1 some description", "hit2"]
    assert msa.deletion_matrix.dtype == np.int32 and msa.source == "hand.a3m"


def test_stockholm_removes_query_gap_columns_and_counts_deletions():
    text = """# STOCKHOLM 1.0
#=GS hit1/1-9 DE a description
query   AC-DE
hit1/1-9 AKKDE
hit2    -C-D.

query   --FG
hit1/1-9 LLFG
hit2    -AF-
#=GC RF xx.xxxx
//
"""
    msa = parsers.parse_stockholm(text, "hand.sto")
    assert msa.sequences == ["ACDEFG", "AKDEFG", "-CD-F-"]
    # hit1: one K in the query-gap column before D, then L,L before F; hit2: the 'A' before F.
    np.testing.assert_array_equal(msa.deletion_matrix, [[0] * 6, [0, 0, 1, 0, 2, 0], [0, 0, 0, 0, 1, 0]])
    assert msa.descriptions == ["query", "hit1/1-9", "hit2"]
    truncated = parsers.parse_stockholm(text, "hand.sto", max_sequences=2)
    assert truncated.sequences == msa.sequences[:2]


def test_real_stockholm_matches_its_a3m_conversion():
    text = _alignments("2crb_A", "uniref90_hits.sto").read_text()
    msa = parsers.parse_stockholm(text)
    assert len(msa) == 449 and msa.num_columns == 97 and msa.sequences[0] == QUERY_2CRB
    # Independent route: Stockholm -> A3M text (insertions as lower case) -> A3M parser.
    via_a3m = parsers.parse_a3m(parsers.stockholm_to_a3m(text))
    assert via_a3m.sequences == msa.sequences
    np.testing.assert_array_equal(via_a3m.deletion_matrix, msa.deletion_matrix)
    assert msa.deletion_matrix.sum() > 0
    # Truncation: the first N sequences, identical rows to the full parse.
    trunc_text = parsers.truncate_stockholm(text, 50)
    assert parsers.parse_stockholm(trunc_text).sequences == msa.sequences[:50]
    assert parsers.parse_stockholm(text, max_sequences=50).sequences == msa.sequences[:50]


def test_stockholm_dedup_and_empty_columns():
    text = _alignments("2crb_A", "uniref90_hits.sto").read_text()
    msa = parsers.parse_stockholm(text)
    dedup = parsers.parse_stockholm(parsers.deduplicate_stockholm(text))
    assert dedup.sequences == list(dict.fromkeys(msa.sequences))
    cleaned = parsers.remove_empty_columns_from_stockholm(parsers.deduplicate_stockholm(text))
    rows = [ln.split()[1] for ln in cleaned.splitlines() if ln.strip() and not ln.startswith(("#", "//"))]
    assert all(any(r[c] != "-" for r in rows) for c in range(len(rows[0])))
    assert parsers.parse_stockholm(cleaned).sequences == dedup.sequences


def test_real_a3m():
    msa = parsers.read_msa(_alignments("2crb_A", "bfd_uniclust_hits.a3m"))
    assert len(msa) == 416 and msa.num_columns == 97 and msa.sequences[0] == QUERY_2CRB
    assert msa.deletion_matrix.shape == (416, 97) and msa.deletion_matrix[0].sum() == 0


def test_hhr_hits():
    path = _alignments("pdb70_hits.hhr")
    hits = parsers.parse_hhr(path.read_text(), path)
    assert len(hits) == 10
    first = hits[0]
    assert first.index == 1 and first.name.startswith("1HF9_B ATPASE INHIBITOR")
    assert first.aligned_cols == 22 and first.sum_probs == pytest.approx(13.1)
    assert first.query == "AEHHHKAAEHHEQAAKHHHAAA" and first.hit_sequence == "ISHHAKEIERLQKEIERHKQSI"
    assert first.indices_query == list(range(6, 28)) and first.indices_hit == list(range(9, 31))
    query = parsers.parse_a3m(_alignments("bfd_uniclust_hits.a3m").read_text()).sequences[0]
    for hit in hits:
        assert len(hit.query) == len(hit.hit_sequence) == len(hit.indices_query) == len(hit.indices_hit)
        # every aligned query residue is the residue of the query at that index
        for ch, i in zip(hit.query, hit.indices_query):
            assert (ch == "-") == (i == -1) and (i == -1 or query[i] == ch)


def test_hmmsearch_hits():
    from mindsponge_fold.data.pipeline import read_template_hits
    hits = read_template_hits(_alignments("2crb_A", "hmm_output.sto"), QUERY_2CRB)
    assert hits[0].name == "2crb_A" and hits[1].name == "4zey_A"
    assert hits[0].sum_probs is None and hits[0].aligned_cols == 97
    assert hits[0].indices_hit == list(range(97)) and hits[0].hit_sequence == QUERY_2CRB
    h = hits[1]   # 4zey_A/2-84: residues of the hit on the query's 97 columns
    assert len(h.indices_hit) == 97 and h.indices_hit[7] == 1 and h.hit_sequence[7:10] == "MEG"


@pytest.mark.parametrize("description,expected", [
    ("tr|A0A146SKV9|A0A146SKV9_FUNHE some protein OS=...", "FUNHE"),
    ("sp|P0C2L1|A3X1_LOXLA", "LOXLA"),
    ("tr|A0A1U7T2F3|A0A1U7T2F3_TARSY/3-90 nuclear receptor", "TARSY"),
    ("UniRef90_Q8VCQ3/4-88", ""),
    ("MGYP000123456789", ""),
    ("", ""),
])
def test_species_identifiers(description, expected):
    assert species_id(description) == expected
