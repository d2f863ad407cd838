"""hmmbuild: HMMER profile from an MSA (the template-search query of AlphaFold 2.3)."""
from __future__ import annotations

import dataclasses

from mindsponge_fold.data.tools.utils import find_binary, run_tool


@dataclasses.dataclass
class Hmmbuild:
    binary_path: str = "hmmbuild"
    singlemx: bool = False
    timeout: float | None = None
    cache_dir: str | None = None

    def __post_init__(self):
        find_binary(self.binary_path, "hmmbuild")

    def build_profile_from_sto(self, sto: str, model_construction: str = "fast") -> str:
        """HMM text from a Stockholm MSA; 'hand' uses the '#=GC RF' line to pick match columns."""
        return self._build(sto, model_construction)

    def _build(self, msa: str, model_construction: str) -> str:
        if model_construction not in ("hand", "fast"):
            raise ValueError(f"model_construction must be 'hand' or 'fast', got {model_construction!r}")
        args = []
        if model_construction == "hand":
            args.append("--hand")
        if self.singlemx:
            args.append("--singlemx")
        args += ["--amino", "{out:output.hmm}", "{in:query.msa}"]
        result = run_tool("hmmbuild", self.binary_path, args, inputs={"query.msa": msa}, timeout=self.timeout,
                          cache_dir=self.cache_dir)
        return result.outputs["output.hmm"]
