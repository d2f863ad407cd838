"""hmmsearch: search an HMM profile (built by hmmbuild from the uniref90 MSA) against a FASTA database
(pdb_seqres.txt in AlphaFold 2.3); hits come back as Stockholm."""
from __future__ import annotations

import dataclasses

from mindsponge_fold.data import parsers
from mindsponge_fold.data.tools.hmmbuild import Hmmbuild
from mindsponge_fold.data.tools.utils import check_fasta_database, find_binary, run_tool

DEFAULT_FLAGS = ("--F1", "0.1", "--F2", "0.1", "--F3", "0.1", "--incE", "100", "-E", "100", "--domE", "100",
                 "--incdomE", "100")


@dataclasses.dataclass
class Hmmsearch:
    database_path: str
    binary_path: str = "hmmsearch"
    hmmbuild_binary_path: str = "hmmbuild"
    flags: tuple = DEFAULT_FLAGS
    n_cpu: int = 2
    timeout: float | None = None
    cache_dir: str | None = None

    input_format = "sto"
    output_format = "sto"

    def __post_init__(self):
        find_binary(self.binary_path, "hmmsearch")
        check_fasta_database(self.database_path, "hmmsearch")
        self.hmmbuild = Hmmbuild(binary_path=self.hmmbuild_binary_path, timeout=self.timeout,
                                 cache_dir=self.cache_dir)

    def query(self, msa_sto: str) -> str:
        """Stockholm hits for a Stockholm query MSA (profile built with 'hand' model construction)."""
        return self.query_with_hmm(self.hmmbuild.build_profile_from_sto(msa_sto, model_construction="hand"))

    def query_with_hmm(self, hmm: str) -> str:
        args = ["--noali", "--cpu", str(self.n_cpu), *self.flags, "-A", "{out:output.sto}", "{in:query.hmm}",
                self.database_path]
        result = run_tool("hmmsearch", self.binary_path, args, inputs={"query.hmm": hmm},
                          databases=[self.database_path], timeout=self.timeout, cache_dir=self.cache_dir)
        return result.outputs["output.sto"]

    def get_template_hits(self, output_string: str, input_sequence: str) -> list:
        a3m = parsers.stockholm_to_a3m(output_string, remove_first_row_gaps=False)
        return parsers.parse_hmmsearch_a3m(input_sequence, a3m, skip_first=False)
