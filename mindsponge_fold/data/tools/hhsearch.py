"""HHsearch: template search of a query MSA (A3M) against an HH-suite database such as PDB70."""
from __future__ import annotations

import dataclasses

from mindsponge_fold.data import parsers
from mindsponge_fold.data.tools.utils import check_hh_database, find_binary, run_tool


@dataclasses.dataclass
class HHSearch:
    databases: list
    binary_path: str = "hhsearch"
    maxseq: int = 1_000_000
    n_cpu: int = 2
    timeout: float | None = None
    cache_dir: str | None = None

    input_format = "a3m"
    output_format = "hhr"

    def __post_init__(self):
        find_binary(self.binary_path, "hhsearch")
        for db in self.databases:
            check_hh_database(db, "hhsearch")

    def command_args(self) -> list:
        args = ["-i", "{in:query.a3m}", "-o", "{out:output.hhr}", "-maxseq", str(self.maxseq),
                "-cpu", str(self.n_cpu)]
        for db in self.databases:
            args += ["-d", db]
        return args

    def query(self, a3m: str) -> str:
        """The .hhr text for the query MSA ``a3m`` (A3M text)."""
        result = run_tool("hhsearch", self.binary_path, self.command_args(), inputs={"query.a3m": a3m},
                          databases=self.databases, timeout=self.timeout, cache_dir=self.cache_dir)
        return result.outputs["output.hhr"]

    def get_template_hits(self, output_string: str, input_sequence: str) -> list:
        del input_sequence  # the hhr holds the query alignment itself
        return parsers.parse_hhr(output_string)
