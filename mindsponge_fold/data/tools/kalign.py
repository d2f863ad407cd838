"""kalign: multiple alignment, used to realign a template hit onto the sequence actually in its mmCIF file."""
from __future__ import annotations

import dataclasses

from mindsponge_fold.common.errors import ToolError
from mindsponge_fold.data import parsers
from mindsponge_fold.data.tools.utils import find_binary, run_tool


@dataclasses.dataclass
class Kalign:
    binary_path: str = "kalign"
    timeout: float | None = 300.0
    cache_dir: str | None = None

    def __post_init__(self):
        find_binary(self.binary_path, "kalign")

    def align(self, sequences: list) -> str:
        """Aligned FASTA (A3M-compatible) of ``sequences``, in input order. Each needs >= 6 residues."""
        for s in sequences:
            if len(s) < 6:
                raise ValueError(f"kalign needs sequences of at least 6 residues, got {s!r} ({len(s)})")
        fasta = "".join(f">s{i}\n{s}\n" for i, s in enumerate(sequences, start=1))
        result = run_tool("kalign", self.binary_path, ["-i", "{in:input.fasta}", "-o", "{out:output.a3m}",
                                                       "-format", "fasta"],
                          inputs={"input.fasta": fasta}, timeout=self.timeout, cache_dir=self.cache_dir)
        text = result.outputs["output.a3m"]
        # Keep the input order whatever order kalign writes the rows in.
        seqs, descs = parsers.parse_fasta(text, "kalign output")
        by_name = {d.split()[0]: s for d, s in zip(descs, seqs) if d.split()}
        missing = [i for i in range(1, len(sequences) + 1) if f"s{i}" not in by_name]
        if missing:
            raise ToolError(f"kalign output lacks sequence(s) {missing}")
        return "".join(f">sequence {i}\n{by_name[f's{i}']}\n" for i in range(1, len(sequences) + 1))
