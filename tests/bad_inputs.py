"""Helpers of the bad-input corpus (``test_bad_input_corpus.py``): a workbench that writes malformed input files
into a test's ``tmp_path``, and an in-process runner of the command line.

The runner calls :func:`mindsponge_fold.cli.main` with an argv in this process (a subprocess per case would cost
seconds of imports each) and returns the exit status (argparse's ``SystemExit`` included), stdout and the non-empty
lines of stderr. :func:`snapshot` lists every file and directory under a root (hidden temporaries included), so a
case can assert that a refused run left nothing behind.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from mindsponge_fold import cli

# A 12-residue query: small files, fast pipelines.
QUERY = "MKVLAAGIVGLL"


@dataclasses.dataclass
class Result:
    code: int
    out: str
    err: list            # non-empty lines of stderr


def run_cli(argv, capsys) -> Result:
    """``mindsponge-fold ARGV`` in this process."""
    capsys.readouterr()
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as e:          # argparse (usage errors) exits
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return Result(code, out, [line for line in err.splitlines() if line.strip()])


def snapshot(root) -> set:
    """Every path under ``root`` (relative; files with their size and modification time)."""
    root = Path(root)
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            found.add(os.path.relpath(os.path.join(dirpath, name), root) + "/")
        for name in filenames:
            st = os.stat(os.path.join(dirpath, name))
            found.add((os.path.relpath(os.path.join(dirpath, name), root), st.st_size, st.st_mtime_ns))
    return found


class Bench:
    """Writes the input files of one case under ``root`` (a test's tmp_path); paths are returned as ``Path``."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, name: str) -> Path:
        return self.root / name

    def text(self, name: str, content: str) -> Path:
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        return path

    def bytes(self, name: str, content: bytes) -> Path:
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return path

    def random(self, name: str, size: int = 2048, seed: int = 0) -> Path:
        """Random bytes (a binary file of no format)."""
        return self.bytes(name, np.random.default_rng(seed).bytes(size))

    def npz(self, name: str, arrays: dict) -> Path:
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **arrays)
        return path

    def directory(self, name: str) -> Path:
        path = self.path(name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def fasta(self, name: str = "q.fasta", sequence: str = QUERY, header: str = "q") -> Path:
        return self.text(name, f">{header}\n{sequence}\n")

    def alignments(self, name: str = "aln", files: dict | None = None, sequence: str = QUERY) -> Path:
        """An alignment directory: a valid bfd_uniclust_hits.a3m of ``sequence`` unless ``files`` replaces it
        (``{file name: text or bytes}``)."""
        root = self.directory(name)
        files = {"bfd_uniclust_hits.a3m": f">query\n{sequence}\n>hit\n{sequence[:-2]}--\n"} if files is None \
            else files
        for file_name, content in files.items():
            (self.bytes if isinstance(content, bytes) else self.text)(f"{name}/{file_name}", content)
        return root
