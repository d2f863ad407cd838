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
