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
