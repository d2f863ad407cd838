"""MMseqs2 (as ColabFold searches with it) against LOCAL databases: query -> an a3m with the query first.

Each database is an MMseqs2 amino-acid sequence database (a prefix P with P.dbtype, made by ``mmseqs createdb``) or a
FASTA file, indexed here with ``mmseqs createdb`` (into ``index_dir`` when given, reused while the FASTA keeps its
path, size and modification time; else into the search's temporary directory). Per database: ``mmseqs search``
(ColabFold's settings: 3 profile iterations, E-value 0.1, sensitivity 8, up to 10000 prefilter hits, alignments kept)
then ``mmseqs result2msa`` in a3m format with ColabFold's diversity filter (which only acts on MSAs of more than 1000
sequences). The result is the query followed by the hits of every database, in the given order. ColabFold's
expandable profile databases (``uniref30_*_db``, ``colabfold_envdb_*_db``) need its expand-and-realign steps and are
refused with an InputError.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import struct
import tempfile
from pathlib import Path

from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data import parsers
from mindsponge_fold.data.tools.utils import (ToolResult, cache_key, default_cache_dir, find_binary, load_cached,
                                              run_tool, store_cached)

TOOL = "mmseqs2"
AMINO_ACID_DBTYPE = 0          # MMseqs2's Parameters::DBTYPE_AMINO_ACIDS (low 16 bits of P.dbtype)
OPTION = "--mmseqs2-database"


def database_kind(path: str) -> str:
    """'mmseqs' for an amino-acid sequence database prefix, 'fasta' for a file; otherwise an InputError."""
    dbtype = Path(str(path) + ".dbtype")
    if dbtype.is_file():
        raw = dbtype.read_bytes()[:4]
        kind = struct.unpack("<i", raw)[0] & 0xFFFF if len(raw) == 4 else None
        if kind != AMINO_ACID_DBTYPE:
            raise InputError(f"{OPTION}: an MMseqs2 database of type {kind}, not amino-acid sequences (ColabFold's "
                             "expandable profile databases need its own expand-and-realign pipeline: give a "
                             "sequence database made by 'mmseqs createdb' or a FASTA)", path)
        return "mmseqs"
    if Path(path).is_file():
        return "fasta"
    raise InputError(f"{OPTION}: not found (expected a FASTA file or an MMseqs2 database prefix P with P.dbtype)",
                     path)


def _drop_first_record(a3m: str) -> str:
    """The a3m without its first record (each database's MSA starts with the query)."""
    lines = a3m.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith(">")]
    return "".join(lines[starts[1]:]) if len(starts) > 1 else ""


@dataclasses.dataclass
class MMseqs2:
    databases: tuple
    binary_path: str = "mmseqs"
    n_cpu: int = 2
    index_dir: str | None = None
    sensitivity: float = 8.0
    num_iterations: int = 3
    e_value: float = 0.1
    max_seqs: int = 10000
    timeout: float | None = None
    cache_dir: str | None = None

    def __post_init__(self):
        self.binary_path = find_binary(self.binary_path, TOOL)
        self.kinds = [database_kind(db) for db in self.databases]

    def search_args(self) -> list:
        return ["--num-iterations", str(self.num_iterations), "-s", str(self.sensitivity), "-e", str(self.e_value),
                "--max-seqs", str(self.max_seqs), "-a", "1", "--threads", str(self.n_cpu), "-v", "1"]

    @staticmethod
    def msa_args() -> list:
        return ["--msa-format-mode", "6", "--filter-msa", "1", "--filter-min-enable", "1000", "--diff", "3000",
                "--qid", "0.0,0.2,0.4,0.6,0.8,1.0", "--qsc", "0", "--max-seq-id", "0.95", "-v", "1"]

    def _run(self, *args) -> None:
        # cache_dir "": the steps write databases, so they are never cached one by one (query() caches the whole)
        run_tool(TOOL, self.binary_path, [str(a) for a in args], timeout=self.timeout, cache_dir="")

    def _index(self, fasta: str, work: Path) -> str:
        """The MMseqs2 database of a FASTA: built once into ``index_dir`` (atomically: a temporary directory renamed
        when complete), else into ``work``."""
        if not self.index_dir:
            prefix = work / f"{Path(fasta).stem}_db"
            self._run("createdb", fasta, prefix, "-v", "1")
            return str(prefix)
        st = os.stat(fasta)
        tag = hashlib.sha256(f"{os.path.realpath(fasta)}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:12]
        final = Path(self.index_dir) / f"{Path(fasta).stem}_{tag}"
        if not (final / "db.dbtype").is_file():
            Path(self.index_dir).mkdir(parents=True, exist_ok=True)
            building = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=self.index_dir))
            self._run("createdb", fasta, building / "db", "-v", "1")
            try:
                os.rename(building, final)
            except OSError:            # built meanwhile by another run: keep that one
                pass
        return str(final / "db")

    def query(self, input_fasta_path: str) -> dict:
        """{'a3m': the query then every database's hits (a3m, insertions in lower case), 'cached': bool}."""
        fasta = parsers.read_text(input_fasta_path)
        cache = self.cache_dir if self.cache_dir is not None else default_cache_dir()
        key = None
        if cache:
            key = cache_key(TOOL, self.binary_path, self.search_args() + ["|"] + self.msa_args(),
                            {"query.fasta": fasta}, [db for db in self.databases])
            hit = load_cached(cache, TOOL, key)
            if hit is not None:
                return {"a3m": hit.outputs["msa.a3m"], "cached": True}
        parts = []
        with tempfile.TemporaryDirectory(prefix="msf_mmseqs2_") as tmp:
            work = Path(tmp)
            (work / "query.fasta").write_text(fasta)
            self._run("createdb", work / "query.fasta", work / "qdb", "-v", "1")
            for i, (db, kind) in enumerate(zip(self.databases, self.kinds)):
                target = db if kind == "mmseqs" else self._index(db, work)
                self._run("search", work / "qdb", target, work / f"res{i}", work / f"tmp{i}", *self.search_args())
                self._run("result2msa", work / "qdb", target, work / f"res{i}", work / f"msa{i}.a3m",
                          *self.msa_args())
                text = (work / f"msa{i}.a3m").read_text().replace("\0", "")
                parts.append(text if i == 0 else _drop_first_record(text))
        a3m = "".join(p if p.endswith("\n") or not p else p + "\n" for p in parts)
        if key:
            store_cached(cache, TOOL, key, [self.binary_path, "search|result2msa", *map(str, self.databases)],
                         ToolResult({"msa.a3m": a3m}, "", "", 0.0, False))
        return {"a3m": a3m, "cached": False}
