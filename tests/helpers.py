"""The one place tests find the workplace's ground truth (``../shared`` beside the repo root).

``shared_path("fixtures", "reference", "params.npz")`` returns the path, or skips the calling test with the reason
when the shared directory is absent (outside this workplace). Set ``MSF_SHARED`` to point elsewhere.
With ``MSF_REQUIRE_SHARED=1`` (set by ``.ci/run``) a missing file fails the test instead: CI must not pass by
skipping its ground-truth comparisons.
"""
import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MSF_SHARED", REPO_ROOT.parent / "shared")).resolve()
# MSF_REFERENCE: another fixture directory in the same format (other protein, seed or recycle count)
REFERENCE = Path(os.environ.get("MSF_REFERENCE", SHARED / "fixtures" / "reference")).resolve()


def _missing(reason: str):
    """Skip the calling test, or fail it when ``MSF_REQUIRE_SHARED=1``."""
    if os.environ.get("MSF_REQUIRE_SHARED") == "1":
        pytest.fail(f"{reason} (MSF_REQUIRE_SHARED=1: required)", pytrace=False)
    pytest.skip(reason)


def shared_path(*parts) -> Path:
    """Path under ../shared; skip (or with MSF_REQUIRE_SHARED=1 fail) the test, saying why, when it does not exist."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        _missing(f"shared ground truth not available: {p} does not exist (set MSF_SHARED to the shared/ directory)")
    return p


def reference_path(name: str) -> Path:
    """A file of the AlphaFold reference fixture (../shared/fixtures/reference/NAME, or $MSF_REFERENCE/NAME)."""
    p = REFERENCE / name
    if not p.exists():
        _missing(f"reference fixture file not available: {p} does not exist (set MSF_SHARED or MSF_REFERENCE)")
    return p


def renumber_pdb_text(text: str, offset: int) -> str:
    """PDB text with the residue numbers (columns 23-26) of its ATOM/HETATM records shifted by ``offset``."""
    out = []
    for line in text.splitlines():
        if line.startswith(("ATOM  ", "HETATM")):
            line = f"{line[:22]}{int(line[22:26]) + offset:4d}{line[26:]}"
        out.append(line)
    return "\n".join(out) + "\n"


# 2crb chain A, the query of the openfold test alignments 2crb_A/ (an NRBF2 domain)
QUERY_2CRB_A = "GSSGSSGMEGPLNLAHQQSRRADRLLAAGKYEEAISCHRKATTYLSEAMKLTESEQAHLSLELQRDSHMKQLLLIQERWKRAKREERLKAHSGPSSG"


def openfold_hits(family: str, rows: slice, accession: bool = False) -> dict:
    """``{name: unaligned sequence}`` of rows ``rows`` of the openfold test alignment ``<family>/bfd_uniclust_hits.a3m``
    (e.g. ``2crb_A``); the name is the header's first word, or with ``accession`` the UniProt accession in it
    (``tr|ACC|ENTRY``)."""
    from mindsponge_fold.data import parsers
    a3m = shared_path("data", "openfold_testdata", "alignments", family, "bfd_uniclust_hits.a3m")
    seqs, descs = parsers.parse_fasta(a3m.read_text())
    picked = list(zip(seqs, descs))[rows]
    return {d.split()[0].split("|")[1] if accession else d.split()[0]: s.replace("-", "").upper() for s, d in picked}


def write_search_database(root: Path, db_name: str, homologues: slice, unrelated: slice, accession: bool = False):
    """A tiny sequence database ``root/db_name`` (FASTA) for the search-tool tests: rows ``homologues`` of 2crb A's
    MSA (NRBF2 homologues) then rows ``unrelated`` of 1psm A's (merozoite proteins), and the query ``root/q.fasta``
    (2crb A). Returns ``(database path, homologue names, unrelated names)``."""
    near, far = openfold_hits("2crb_A", homologues, accession), openfold_hits("1psm_A", unrelated, accession)
    db = root / db_name
    db.write_text("".join(f">{n}\n{s}\n" for n, s in {**near, **far}.items()))
    (root / "q.fasta").write_text(f">2crb_A\n{QUERY_2CRB_A}\n")
    return db, set(near), set(far)
