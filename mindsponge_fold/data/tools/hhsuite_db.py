"""Build a (small) HH-suite database from A3M MSAs, as hhsuitedb.py does: ffindex of the A3Ms, one HMM per entry
(hhmake) and the column-state sequences (cstranslate, cs219) that hhblits' prefilter reads.

Useful for custom template/MSA databases and for testing hhblits/hhsearch offline. Each MSA's first record names
the entry in search results (e.g. '>4zey_A ...' for a template database).
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from mindsponge_fold.common.errors import ToolError
from mindsponge_fold.data.tools.utils import find_binary

_DATA_DIRS = ("/usr/share/hhsuite/data", "/usr/lib/hhsuite/data", "/usr/local/share/hhsuite/data")


def find_cstranslate() -> str:
    """cstranslate on PATH, else Debian's SIMD builds under /usr/libexec/hhsuite (its wrapper script is broken)."""
    found = shutil.which("cstranslate")
    if found:
        return found
    for suffix in ("avx2", "avx", "sse4.1", "ssse3", "sse3", "plain"):
        for path in glob.glob(f"/usr/libexec/hhsuite/cstranslate-{suffix}"):
            if os.access(path, os.X_OK) and _runs(path):
                return path
    raise ToolError("cstranslate (HH-suite) not found on PATH or in /usr/libexec/hhsuite; install hhsuite")


def _runs(path: str) -> bool:
    try:
        return subprocess.run([path, "-h"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=30).returncode in (0, 1)
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_hhsuite_data(name: str) -> str:
    dirs = ([os.path.join(os.environ["HHLIB"], "data")] if os.environ.get("HHLIB") else []) + list(_DATA_DIRS)
    for d in dirs:
        path = os.path.join(d, name)
        if os.path.exists(path):
            return path
    raise ToolError(f"HH-suite data file {name} not found (looked in {', '.join(_DATA_DIRS)}); install hhsuite-data")


def _run(cmd: list, what: str, timeout: float) -> None:
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolError(f"{what} timed out after {timeout:g} s") from None
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.decode("utf-8", "replace").strip().splitlines()[-4:])
        raise ToolError(f"{what} failed (exit status {proc.returncode}): {tail or '(no stderr)'}")


def build_hhsuite_database(msas: dict, prefix, timeout: float = 600.0) -> str:
    """Write PREFIX_{a3m,hhm,cs219}.{ffdata,ffindex} from {entry name: A3M text}; return PREFIX."""
    prefix = str(prefix)
    Path(prefix).parent.mkdir(parents=True, exist_ok=True)
    ffindex_build = find_binary("ffindex_build", "ffindex_build")
    ffindex_apply = find_binary("ffindex_apply", "ffindex_apply")
    hhmake = find_binary("hhmake", "hhmake")
    with tempfile.TemporaryDirectory(prefix="msf_hhdb_") as tmp:
        for name, text in msas.items():
            Path(tmp, name).write_text(text)
        _run([ffindex_build, "-s", f"{prefix}_a3m.ffdata", f"{prefix}_a3m.ffindex", tmp], "ffindex_build", timeout)
    _run([ffindex_apply, f"{prefix}_a3m.ffdata", f"{prefix}_a3m.ffindex", "-i", f"{prefix}_hhm.ffindex",
          "-d", f"{prefix}_hhm.ffdata", "--", hhmake, "-i", "stdin", "-o", "stdout", "-v", "0"],
         "ffindex_apply hhmake", timeout)
    _run([find_cstranslate(), "-f", "-x", "0.3", "-c", "4", "-I", "a3m", "-b",
          "-i", f"{prefix}_a3m", "-o", f"{prefix}_cs219",
          "-A", find_hhsuite_data("cs219.lib"), "-D", find_hhsuite_data("context_data.lib")],
         "cstranslate", timeout)
    return prefix
