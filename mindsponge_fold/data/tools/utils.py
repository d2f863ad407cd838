"""Running the external search tools: binary lookup, timeouts, readable failures, and an on-disk result cache.

``run_tool`` runs one command in a private temporary directory. Arguments may hold placeholders
``{in:NAME}`` (an input file written from ``inputs[NAME]``) and ``{out:NAME}`` (an output file read back after the
run). With a cache directory, the result is stored under a key made of: the tool name, the binary (resolved path,
size, mtime), the arguments with placeholders unresolved, the SHA-256 of every input text, and each database's
files (path, size, mtime: databases are far too large to hash). The same call again returns the stored outputs
without running the binary.
"""
from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from mindsponge_fold.common.errors import ToolError
from mindsponge_fold.common.fileio import write_json

_PLACEHOLDER = re.compile(r"\{(in|out):([^{}]+)\}")
CACHE_ENV = "MSF_TOOL_CACHE"
_INSTALL_HINT = "install it (scripts/setup.sh --tools) or pass its path"
_PACKAGE = {"jackhmmer": "hmmer", "hmmsearch": "hmmer", "hmmbuild": "hmmer", "hhblits": "hhsuite",
            "hhsearch": "hhsuite", "kalign": "kalign", "mmseqs2": "mmseqs2"}


@dataclasses.dataclass(frozen=True)
class ToolResult:
    outputs: dict        # NAME -> text of each {out:NAME} file
    stdout: str
    stderr: str
    seconds: float
    cached: bool


def find_binary(binary: str, tool: str) -> str:
    """Absolute path of ``binary`` (a path or a name on PATH); ToolError naming the tool when missing."""
    if os.sep in binary:
        if os.path.isfile(binary) and os.access(binary, os.X_OK):
            return os.path.abspath(binary)
        raise ToolError(f"{tool}: binary '{binary}' does not exist or is not executable")
    found = shutil.which(binary)
    if found is None:
        pkg = _PACKAGE.get(tool)
        raise ToolError(f"{tool}: binary '{binary}' not found on PATH; {_INSTALL_HINT}"
                        + (f" (Debian package '{pkg}')" if pkg else ""))
    return found


def check_fasta_database(path: str, tool: str) -> str:
    if not os.path.isfile(path):
        raise ToolError(f"{tool}: database '{path}' not found (expected a FASTA file)")
    return path


def check_hh_database(prefix: str, tool: str) -> str:
    """An HH-suite database is a prefix P with files P_a3m.ffdata, P_hhm.ffindex, P_cs219.ffdata, ..."""
    if not glob.glob(prefix + "_*"):
        raise ToolError(f"{tool}: database '{prefix}' not found (no files '{prefix}_*', e.g. {prefix}_hhm.ffdata)")
    return prefix


def _file_identity(path: str) -> list:
    st = os.stat(path)
    return [os.path.realpath(path), st.st_size, int(st.st_mtime_ns)]


def _database_identity(database: str) -> list:
    files = [database] if os.path.isfile(database) else sorted(glob.glob(database + "_*"))
    return [_file_identity(f) for f in files]


def default_cache_dir():
    """The cache directory from the environment (``MSF_TOOL_CACHE``), or None: no caching."""
    return os.environ.get(CACHE_ENV) or None


def cache_key(tool: str, binary: str, args: list, inputs: dict, databases=()) -> str:
    desc = {
        "tool": tool,
        "binary": _file_identity(binary),
        "args": [str(a) for a in args],
        "inputs": {k: hashlib.sha256(v.encode()).hexdigest() for k, v in sorted(inputs.items())},
        "databases": [_database_identity(d) for d in databases],
    }
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()


def _stderr_tail(stderr: str, max_lines: int = 6, max_chars: int = 600) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    tail = " | ".join(lines[-max_lines:])
    return tail[-max_chars:] if tail else "(no stderr)"


def run_tool(tool: str, binary: str, args: list, *, inputs: dict | None = None, databases=(),
             timeout: float | None = None, cache_dir=None, env: dict | None = None) -> ToolResult:
    """Run ``binary args`` (placeholders resolved in a temp dir); return the {out:NAME} files' texts.

    Raises ToolError when the binary is missing, exits non-zero (message ends with the stderr tail), times out,
    or does not write a declared output.
    """
    inputs = dict(inputs or {})
    binary = find_binary(binary, tool)
    cache_dir = cache_dir if cache_dir is not None else default_cache_dir()
    key = cache_key(tool, binary, args, inputs, databases) if cache_dir else None
    if key:
        hit = load_cached(cache_dir, tool, key)
        if hit is not None:
            return hit
    with tempfile.TemporaryDirectory(prefix=f"msf_{tool}_") as tmp:
        outputs = {}

        def resolve(match):
            kind, name = match.group(1), match.group(2)
            path = os.path.join(tmp, name)
            if kind == "in":
                if name not in inputs:
                    raise ValueError(f"{tool}: argument refers to input '{name}' that was not given")
                Path(path).write_text(inputs[name])
            else:
                outputs[name] = path
            return path

        cmd = [binary] + [_PLACEHOLDER.sub(resolve, str(a)) for a in args]
        start = time.time()
        try:
            proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                                  cwd=tmp, env=None if env is None else {**os.environ, **env})
        except subprocess.TimeoutExpired as e:
            err = (e.stderr or b"").decode("utf-8", "replace")
            raise ToolError(f"{tool} timed out after {timeout:g} s; stderr tail: {_stderr_tail(err)}") from None
        except OSError as e:
            raise ToolError(f"{tool}: could not start '{binary}': {e.strerror}") from None
        seconds = time.time() - start
        stdout = proc.stdout.decode("utf-8", "replace")
        stderr = proc.stderr.decode("utf-8", "replace")
        if proc.returncode != 0:
            raise ToolError(f"{tool} failed (exit status {proc.returncode}); stderr tail: "
                            f"{_stderr_tail(stderr or stdout)}")
        texts = {}
        for name, path in outputs.items():
            if not os.path.exists(path):
                raise ToolError(f"{tool} exited 0 but wrote no output '{name}'; stderr tail: {_stderr_tail(stderr)}")
            texts[name] = Path(path).read_text(errors="replace")
    result = ToolResult(texts, stdout, stderr, seconds, False)
    if key:
        store_cached(cache_dir, tool, key, [binary] + [str(a) for a in args], result)
    return result


def store_cached(cache_dir, tool: str, key: str, cmd: list, result: ToolResult) -> None:
    """Keep ``result`` under ``key`` (:func:`cache_key`) in ``cache_dir``."""
    write_json(Path(cache_dir) / tool / f"{key}.json",
               {"tool": tool, "cmd": cmd, "outputs": result.outputs, "stdout": result.stdout,
                "stderr": result.stderr, "seconds": result.seconds})


def load_cached(cache_dir, tool: str, key: str):
    """The ToolResult stored under ``key`` (``cached`` True), or None."""
    path = Path(cache_dir) / tool / f"{key}.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        return ToolResult(data["outputs"], data["stdout"], data["stderr"], data["seconds"], True)
    except (ValueError, KeyError):
        return None   # a damaged entry is recomputed (and overwritten)
