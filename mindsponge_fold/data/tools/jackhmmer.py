"""jackhmmer: iterative profile search of a sequence against a FASTA database (uniref90, mgnify, small BFD)."""
from __future__ import annotations

import dataclasses

from mindsponge_fold.data import parsers
from mindsponge_fold.data.tools.utils import check_fasta_database, find_binary, run_tool


@dataclasses.dataclass
class Jackhmmer:
    """Settings are AlphaFold's: 1 iteration, E-value 1e-4 for inclusion and reporting, strict F1/F2/F3 filters."""
    database_path: str
    binary_path: str = "jackhmmer"
    n_cpu: int = 2
    n_iter: int = 1
    e_value: float = 0.0001
    z_value: int | None = None
    get_tblout: bool = False
    filter_f1: float = 0.0005
    filter_f2: float = 0.00005
    filter_f3: float = 0.0000005
    incdom_e: float | None = None
    dom_e: float | None = None
    timeout: float | None = None
    cache_dir: str | None = None

    def __post_init__(self):
        find_binary(self.binary_path, "jackhmmer")
        check_fasta_database(self.database_path, "jackhmmer")

    def command_args(self) -> list:
        args = ["-o", "/dev/null", "-A", "{out:output.sto}", "--noali",
                "--F1", str(self.filter_f1), "--F2", str(self.filter_f2), "--F3", str(self.filter_f3),
                "--incE", str(self.e_value), "-E", str(self.e_value), "--cpu", str(self.n_cpu), "-N", str(self.n_iter)]
        if self.get_tblout:
            args += ["--tblout", "{out:tblout.txt}"]
        if self.z_value:
            args += ["-Z", str(self.z_value)]
        if self.dom_e is not None:
            args += ["--domE", str(self.dom_e)]
        if self.incdom_e is not None:
            args += ["--incdomE", str(self.incdom_e)]
        return args + ["{in:query.fasta}", self.database_path]

    def query(self, input_fasta_path: str, max_sequences: int | None = None) -> dict:
        """{'sto': Stockholm text (first ``max_sequences`` rows when given), 'tbl': tblout text or ''}."""
        fasta = parsers.read_text(input_fasta_path)
        result = run_tool("jackhmmer", self.binary_path, self.command_args(), inputs={"query.fasta": fasta},
                          databases=[self.database_path], timeout=self.timeout, cache_dir=self.cache_dir)
        sto = result.outputs["output.sto"]
        if max_sequences is not None:
            sto = parsers.truncate_stockholm(sto, max_sequences)
        return {"sto": sto, "tbl": result.outputs.get("tblout.txt", ""), "stderr": result.stderr,
                "cached": result.cached}
