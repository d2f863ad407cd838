"""The tests' ground-truth lookup (tests/helpers.py): a missing ../shared skips a test locally but fails it under
CI's MSF_REQUIRE_SHARED=1 (.ci/run), so CI cannot pass by skipping its comparisons."""
from pathlib import Path

import pytest

import helpers

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def no_shared(tmp_path, monkeypatch):
    monkeypatch.setattr(helpers, "SHARED", tmp_path / "no_shared")
    monkeypatch.setattr(helpers, "REFERENCE", tmp_path / "no_shared" / "fixtures" / "reference")
    return tmp_path / "no_shared"


@pytest.mark.parametrize("lookup", [lambda: helpers.shared_path("data", "x.pdb"),
                                    lambda: helpers.reference_path("params.npz")])
def test_missing_shared_skips_unless_required(no_shared, monkeypatch, lookup):
    monkeypatch.delenv("MSF_REQUIRE_SHARED", raising=False)
    with pytest.raises(pytest.skip.Exception, match="does not exist"):
        lookup()
    monkeypatch.setenv("MSF_REQUIRE_SHARED", "1")
    with pytest.raises(pytest.fail.Exception, match="does not exist.*MSF_REQUIRE_SHARED=1"):
        lookup()


def test_present_shared_is_returned(no_shared, monkeypatch):
    monkeypatch.setenv("MSF_REQUIRE_SHARED", "1")
    (no_shared / "data").mkdir(parents=True)
    assert helpers.shared_path("data") == no_shared / "data"


def test_ci_requires_shared():
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert "export MSF_REQUIRE_SHARED=1" in lines
