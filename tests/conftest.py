import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("GLOG_v", "3")

from helpers import REFERENCE, SHARED, reference_path, shared_path  # noqa: E402,F401


@pytest.fixture(autouse=True)
def _run_in_tmp_cwd(tmp_path, monkeypatch):
    """MindSpore drops rank_0/, rewritten_network/ etc. into the cwd: keep them out of the repo."""
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture(scope="module", autouse=True)
def _report_rss(request):
    """MSF_TEST_RSS=FILE: append each test module's RSS after it ran (finding memory that piles up across modules)."""
    yield
    path = os.environ.get("MSF_TEST_RSS")
    if path:
        import psutil
        with open(path, "a") as f:
            f.write(f"{psutil.Process().memory_info().rss / 2**30:.2f} GB after {request.module.__name__}\n")
