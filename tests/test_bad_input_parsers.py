"""Bad-input corpus, parsers and structures: FASTA, A3M, Stockholm, template hits (HHR, hmmsearch), mmCIF templates and
ground truth. What every case asserts: ``bad_inputs.py``."""
from __future__ import annotations

import pytest

from bad_inputs import QUERY, Corpus, check_case, make_features, mmcif, native, predict, raw_reference
from helpers import QUERY_2CRB_A

corpus = Corpus()
case = corpus.case


# ------------------------------------------------------------------------------------------------------- FASTA

@case("fasta-empty-file", "@q.fasta", "no FASTA records")
def _(w):
    return make_features(w, fasta=w.text("q.fasta", ""))


@case("fasta-blank-lines-only", "@q.fasta", "no FASTA records")
def _(w):
    return make_features(w, fasta=w.text("q.fasta", "\n  \n\t\n"))


@case("fasta-header-without-sequence", "@q.fasta", "record 'q' has no residues")
def _(w):
    return make_features(w, fasta=w.text("q.fasta", ">q\n"))


@case("fasta-lowercase-residues", "@q.fasta:2", "invalid residue letter 'm'")
def _(w):
    return make_features(w, fasta=w.fasta(sequence=QUERY.lower()))


@case("fasta-gap-in-sequence", "@q.fasta:2", "invalid residue letter '-'")
def _(w):
    return make_features(w, fasta=w.fasta(sequence=QUERY[:4] + "-" + QUERY[5:]))


@case("fasta-space-in-sequence", "@q.fasta:2", "invalid residue letter ' '")
def _(w):
    return make_features(w, fasta=w.fasta(sequence=QUERY[:4] + " " + QUERY[4:]))


@case("fasta-multi-record-where-one-expected", "@q.fasta:3", "expected one sequence, found 2 records")
def _(w):
    return make_features(w, fasta=w.text("q.fasta", f">a\n{QUERY}\n>b\n{QUERY}\n"))


@case("fasta-not-utf8", "@q.fasta", "not a text file")
def _(w):
    return make_features(w, fasta=w.bytes("q.fasta", b">q\n" + QUERY.encode()[:4] + b"\xff\xfe" + b"\n"))


@case("fasta-binary", "@q.fasta", "not a text file")
def _(w):
    return make_features(w, fasta=w.random("q.fasta"))


@case("fasta-missing", "@nope.fasta", "not found")
def _(w):
    return make_features(w, fasta=w.path("nope.fasta"))


@case("fasta-is-a-directory", "@fasta_dir", "directory")
def _(w):
    return make_features(w, fasta=w.directory("fasta_dir"))


@case("fasta-bom-without-header", "@q.fasta:1", "FASTA data before the first '>' header line")
def _(w):
    return make_features(w, fasta=w.bytes("q.fasta", b"\xef\xbb\xbf" + QUERY.encode() + b"\n"))


@case("fasta-dna-sequence-make-features", "@q.fasta:1", "looks like a nucleotide sequence", warn=True)
def _(w):
    dna = "ACGTTGCAACGTAGCTAGGCTA"
    return make_features(w, fasta=w.fasta(sequence=dna), align=w.alignments(sequence=dna))


@case("fasta-dna-sequence-predict", "@q.fasta:1", "looks like a nucleotide sequence", warn=True, status=2)
def _(w):
    dna = "ACGTTGCAACGTAGCTAGGCTA"      # warned when read, then refused: no alignments for it
    return predict(w, fasta=w.fasta(sequence=dna), align=w.directory("no_alignments"))


@case("predict-fasta-empty", "@q.fasta", "no FASTA records")
def _(w):
    return predict(w, fasta=w.text("q.fasta", ""))


@case("predict-fasta-not-utf8", "@q.fasta", "not a text file")
def _(w):
    return predict(w, fasta=w.bytes("q.fasta", b">q\n\xc3\x28" + QUERY.encode() + b"\n"))


@case("predict-fasta-lowercase", "@q.fasta:2", "invalid residue letter 'm'")
def _(w):
    return predict(w, fasta=w.fasta(sequence=QUERY.lower()))


@case("predict-fasta-missing", "@nope.fasta", "not found")
def _(w):
    return predict(w, fasta=w.path("nope.fasta"))


@case("predict-features-too-long", "@raw.npz", "97 residues", "maximum length 50")
def _(w):
    return predict(w, "--max-length", "50", inputs=["--features", w.npz("raw.npz", raw_reference())])


# ---------------------------------------------------------------------------------------------------- A3M

@case("a3m-binary", "@aln/bfd_uniclust_hits.a3m", "not a text file")
def _(w):
    return make_features(w, align=w.alignments(files={"bfd_uniclust_hits.a3m": b"\x00\x01\x02\xff" * 64}))


@case("a3m-data-before-header", "@aln/bfd_uniclust_hits.a3m:1", "A3M data before the first '>' header line")
def _(w):
    return make_features(w, align=w.alignments(files={"bfd_uniclust_hits.a3m": f"{QUERY}\n>q\n{QUERY}\n"}))


@case("a3m-query-row-all-insertions", "@aln/bfd_uniclust_hits.a3m:1", "no aligned residues")
def _(w):
    return make_features(w, align=w.alignments(files={"bfd_uniclust_hits.a3m": f">q\n{QUERY.lower()}\n"}))


@case("a3m-hit-without-sequence", "@aln/bfd_uniclust_hits.a3m:3", "row 'hit' has 0 aligned columns")
def _(w):
    return make_features(w, align=w.alignments(files={"bfd_uniclust_hits.a3m": f">q\n{QUERY}\n>hit\n"}))


@case("a3m-only-a-comment", "@aln/bfd_uniclust_hits.a3m", "empty MSA")
def _(w):
    return make_features(w, align=w.alignments(files={"bfd_uniclust_hits.a3m": "# just a comment\n"}))


@case("a3m-of-another-length", "@aln/bfd_uniclust_hits.a3m", "MSA has 10 columns", "12 residues")
def _(w):
    return make_features(w, align=w.alignments(files={"bfd_uniclust_hits.a3m": f">q\n{QUERY[:10]}\n"}))


@case("a3m-file-is-a-directory", "@aln/bfd_uniclust_hits.a3m", "directory")
def _(w):
    align = w.alignments(files={})
    w.directory("aln/bfd_uniclust_hits.a3m")
    return make_features(w, align=align)


@case("predict-hhr-malformed", "@aln/pdb70_hits.hhr:1", "not an HHR file")
def _(w):
    align = w.alignments()
    w.text("aln/pdb70_hits.hhr", "hits of some search\n")
    return predict(w, "--mmcif-dir", mmcif("4zey.cif").parent, align=align)


# ---------------------------------------------------------------------------------------------- Stockholm

@case("sto-binary", "@aln/uniref90_hits.sto", "not a text file")
def _(w):
    return make_features(w, align=w.alignments(files={"uniref90_hits.sto": b"\x89\x00\xfe" * 100}))


@case("sto-three-fields", "@aln/uniref90_hits.sto:3", "expected '<name> <aligned sequence>', got 3 fields")
def _(w):
    return make_features(w, align=w.alignments(files={
        "uniref90_hits.sto": f"# STOCKHOLM 1.0\nq {QUERY}\nhit {QUERY} extra\n//\n"}))


@case("sto-query-all-gaps", "@aln/uniref90_hits.sto:2", "the query row 'q' has no residues")
def _(w):
    return make_features(w, align=w.alignments(files={
        "uniref90_hits.sto": f"# STOCKHOLM 1.0\nq {'-' * 12}\nhit {QUERY}\n//\n"}))


@case("sto-is-fasta", "@aln/uniref90_hits.sto:1", "got 1 fields")
def _(w):
    return make_features(w, align=w.alignments(files={"uniref90_hits.sto": f">q\n{QUERY}\n"}))


@case("sto-empty-file", "@aln/uniref90_hits.sto", "empty MSA")
def _(w):
    return make_features(w, align=w.alignments(files={"uniref90_hits.sto": ""}))


@case("sto-lowercase-insert-state-only", "@aln/mgnify_hits.sto", "MSA has 6 columns", "12 residues")
def _(w):
    return make_features(w, align=w.alignments(files={
        "mgnify_hits.sto": f"# STOCKHOLM 1.0\nq {QUERY[:6]}\n//\n"}))


@case("sto-mgnify-first-row-not-query", "@aln/mgnify_hits.sto", "the first row ('other') is not the query")
def _(w):
    other = "W" + QUERY[1:]
    return make_features(w, align=w.alignments(files={
        "mgnify_hits.sto": f"# STOCKHOLM 1.0\nother {other}\nq {QUERY}\n//\n"}))


@case("sto-bad-character", "@aln/uniref90_hits.sto:3", "invalid character '*'")
def _(w):
    return make_features(w, align=w.alignments(files={
        "uniref90_hits.sto": f"# STOCKHOLM 1.0\nq {QUERY}\nhit {QUERY[:5]}*{QUERY[6:]}\n//\n"}))


# -------------------------------------------------------------------------------------------- template hits

HHR_HIT = (
    "No 1\n"
    ">4zey_A some protein\n"
    "Probab=99.0  E-value=1e-20  Score=100.0  Aligned_cols=12  Identities=100%  Similarity=1.0  Sum_probs=11.0  "
    "Template_Neff=1.0\n\n"
    f"Q q                1 {QUERY}   12 (12)\n"
    f"T 4zey_A           1 {QUERY}   12 (84)\n")
HHR_HEADER = "Query         q\nMatch_columns 12\nNo_of_seqs    1 out of 1\n\n"


def hits(w, text, name="pdb70_hits.hhr", *extra):
    hit_file = (w.bytes if isinstance(text, bytes) else w.text)(name, text)
    return make_features(w, "--template-hits", hit_file, "--mmcif-dir", mmcif("4zey.cif").parent, *extra)


@case("hhr-empty-file", "@pdb70_hits.hhr", "no template hits", warn=True)
def _(w):
    return hits(w, "")


@case("hhr-header-without-hits", "@pdb70_hits.hhr", "no template hits", warn=True)
def _(w):
    return hits(w, HHR_HEADER)


@case("hhr-binary", "@pdb70_hits.hhr", "not a text file")
def _(w):
    return hits(w, b"\x00\x9c" * 300)


@case("hhr-not-an-hhr", "@pdb70_hits.hhr:1", "not an HHR file")
def _(w):
    return hits(w, "some notes\nabout templates\n")


@case("hhr-bad-summary-line", "@pdb70_hits.hhr:7", "hit summary line not understood")
def _(w):
    return hits(w, HHR_HEADER + HHR_HIT.replace("Probab=99.0", "Prob 99"))


@case("hhr-truncated-hit", "@pdb70_hits.hhr:5", "hit block is truncated")
def _(w):
    return hits(w, HHR_HEADER + "No 1\n>4zey_A\n")


@case("hhr-bad-hit-number", "@pdb70_hits.hhr:5", "hit block must start with 'No <number>'")
def _(w):
    return hits(w, HHR_HEADER + HHR_HIT.replace("No 1", "No one"))


@case("hhr-query-range-mismatch", "@pdb70_hits.hhr:9", "residue range does not match its length")
def _(w):
    return hits(w, HHR_HEADER + HHR_HIT.replace(f"{QUERY}   12 (12)", f"{QUERY}   14 (12)"))


@case("hhr-template-row-ragged", "@pdb70_hits.hhr:10", "does not match the preceding query line")
def _(w):
    return hits(w, HHR_HEADER + HHR_HIT.replace(f"T 4zey_A           1 {QUERY}", f"T 4zey_A           1 {QUERY[:9]}"))


@case("hhr-without-mmcif-dir", "--template-hits needs --mmcif-dir")
def _(w):
    return make_features(w, "--template-hits", w.text("pdb70_hits.hhr", HHR_HEADER + HHR_HIT))


@case("hits-unknown-format", "@hits.txt", "unknown template hit format")
def _(w):
    return hits(w, HHR_HEADER + HHR_HIT, "hits.txt")


@case("hmmsearch-bad-description", "@pdb_hits.sto:", "hit description not understood")
def _(w):
    return hits(w, f"# STOCKHOLM 1.0\n#=GS 4zey_A/1-12 DE mol:protein garbage\n4zey_A/1-12 {QUERY}\n//\n",
                "pdb_hits.sto")


@case("mmcif-dir-missing", "@no_mmcifs", "not found")
def _(w):
    return make_features(w, "--template-hits", w.text("pdb70_hits.hhr", HHR_HEADER + HHR_HIT),
                         "--mmcif-dir", w.path("no_mmcifs"))


@case("max-template-date-malformed", "--max-template-date must be a date YYYY-MM-DD", "2020-13-45")
def _(w):
    return make_features(w, "--template-hits", w.text("pdb70_hits.hhr", HHR_HEADER + HHR_HIT),
                         "--mmcif-dir", mmcif("4zey.cif").parent, "--max-template-date", "2020-13-45")


# ---------------------------------------------------------------------------------------------------- mmCIF

def template(w, cif, chain="A", mapping="identity", fasta=None, align=None):
    return make_features(w, "--template", f"{cif}:{chain}:{mapping}", fasta=fasta, align=align)


@case("mmcif-truncated-template", "@cut.cif", "truncated or malformed mmCIF")
def _(w):
    text = mmcif("4zey.cif").read_text()
    return template(w, w.text("cut.cif", text[: len(text) // 2]))


@case("mmcif-without-atom-site", "@header.cif", "no _atom_site")
def _(w):
    return template(w, w.text("header.cif", "data_1ABC\n_entry.id 1ABC\n_exptl.method 'X-RAY DIFFRACTION'\n"))


@case("mmcif-not-mmcif", "@model.cif", "mmCIF")
def _(w):
    return template(w, w.text("model.cif", native().read_text()))


@case("mmcif-binary", "@bin.cif", "not a text file")
def _(w):
    return template(w, w.random("bin.cif"))


@case("mmcif-empty", "@empty.cif", "mmCIF")
def _(w):
    return template(w, w.text("empty.cif", ""))


@case("mmcif-missing", "@nope.cif", "not found")
def _(w):
    return template(w, w.path("nope.cif"))


@case("mmcif-wrong-chain", "4zey.cif", "no protein chain 'Z'")
def _(w):
    return template(w, mmcif("4zey.cif"), chain="Z", mapping="blosum62")


@case("mmcif-no-ca-atoms", "@noca.cif", "CA")
def _(w):
    lines = mmcif("4zey.cif").read_text().splitlines(keepends=True)
    kept = [ln for ln in lines if not (ln.startswith(("ATOM", "HETATM")) and " CA " in ln)]
    return template(w, w.text("noca.cif", "".join(kept)), mapping="blosum62")


@case("template-spec-without-chain", "--template", "MMCIF:CHAIN[:MAP]")
def _(w):
    return make_features(w, "--template", str(mmcif("4zey.cif")))


@case("template-mapping-not-json", "@map.json", "not valid JSON")
def _(w):
    return template(w, mmcif("4zey.cif"), mapping=w.text("map.json", "[1, 2,"))


@case("template-mapping-not-integers", "@map.json", "JSON list of integers")
def _(w):
    return template(w, mmcif("4zey.cif"), mapping=w.text("map.json", '["a", "b"]'))


@case("template-mapping-missing", "@map.json", "not found")
def _(w):
    return template(w, mmcif("4zey.cif"), mapping=w.path("map.json"))


@case("template-identity-of-another-length", "4zey.cif", "identity")
def _(w):
    return template(w, mmcif("4zey.cif"))           # 12-residue query, 84-residue chain


@case("ground-truth-wrong-chain", "2crb.cif", "no protein chain 'Z'")
def _(w):
    fasta = w.fasta(sequence=QUERY_2CRB_A, header="2crb_A")
    return make_features(w, "--ground-truth", f"{mmcif('2crb.cif')}:Z", fasta=fasta,
                         align=w.alignments(sequence=QUERY_2CRB_A))


@case("ground-truth-of-another-protein", "4zey.cif", "is not the query sequence")
def _(w):
    return make_features(w, "--ground-truth", f"{mmcif('4zey.cif')}:A")


@case("ground-truth-spec-with-map", "--ground-truth", "MMCIF:CHAIN")
def _(w):
    return make_features(w, "--ground-truth", f"{mmcif('4zey.cif')}:A:identity")


@pytest.mark.parametrize("name", sorted(corpus.cases))
def test_bad_input(name, tmp_path, capsys, monkeypatch):
    check_case(corpus.cases[name], tmp_path, capsys, monkeypatch)
