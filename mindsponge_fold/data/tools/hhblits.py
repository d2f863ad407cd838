"""HHblits: iterative HMM-HMM search against HH-suite databases (BFD + UniRef30/Uniclust30 in AlphaFold)."""
from __future__ import annotations

import dataclasses

from mindsponge_fold.data import parsers
from mindsponge_fold.data.tools.utils import check_hh_database, find_binary, run_tool

_DEFAULT_P = 20
_DEFAULT_Z = 500


@dataclasses.dataclass
class HHBlits:
    """AlphaFold's settings: 3 iterations, E 1e-3, very large maxseq/realign_max/maxfilt, 1000 prefilter hits."""
    databases: list
    binary_path: str = "hhblits"
    n_cpu: int = 2
    n_iter: int = 3
    e_value: float = 0.001
    maxseq: int = 1_000_000
    realign_max: int = 100_000
    maxfilt: int = 100_000
    min_prefilter_hits: int = 1000
    all_seqs: bool = False
    alt: int | None = None
    p: int = _DEFAULT_P
    z: int = _DEFAULT_Z
    timeout: float | None = None
    cache_dir: str | None = None

    def __post_init__(self):
        find_binary(self.binary_path, "hhblits")
        for db in self.databases:
            check_hh_database(db, "hhblits")

    def command_args(self) -> list:
        args = ["-i", "{in:query.fasta}", "-cpu", str(self.n_cpu), "-oa3m", "{out:output.a3m}", "-o", "/dev/null",
                "-n", str(self.n_iter), "-e", str(self.e_value), "-maxseq", str(self.maxseq),
                "-realign_max", str(self.realign_max), "-maxfilt", str(self.maxfilt),
                "-min_prefilter_hits", str(self.min_prefilter_hits)]
        if self.all_seqs:
            args.append("-all")
        if self.alt:
            args += ["-alt", str(self.alt)]
        if self.p != _DEFAULT_P:
            args += ["-p", str(self.p)]
        if self.z != _DEFAULT_Z:
            args += ["-Z", str(self.z)]
        for db in self.databases:
            args += ["-d", db]
        return args

    def query(self, input_fasta_path: str) -> dict:
        """{'a3m': the A3M MSA (query first)}."""
        fasta = parsers.read_text(input_fasta_path)
        result = run_tool("hhblits", self.binary_path, self.command_args(), inputs={"query.fasta": fasta},
                          databases=self.databases, timeout=self.timeout, cache_dir=self.cache_dir)
        return {"a3m": result.outputs["output.a3m"], "stderr": result.stderr, "cached": result.cached}
