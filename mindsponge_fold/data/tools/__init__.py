"""Wrappers of the external search tools (AlphaFold 2.3 style): jackhmmer, hhblits, hhsearch, hmmbuild,
hmmsearch, kalign, and MMseqs2 on local databases. Each runs the real binary through ``utils.run_tool`` (timeouts,
ToolError with the stderr tail, optional result cache keyed on binary + arguments + input hashes + database
files)."""
from mindsponge_fold.data.tools.hhblits import HHBlits
from mindsponge_fold.data.tools.hhsearch import HHSearch
from mindsponge_fold.data.tools.hmmbuild import Hmmbuild
from mindsponge_fold.data.tools.hmmsearch import Hmmsearch
from mindsponge_fold.data.tools.jackhmmer import Jackhmmer
from mindsponge_fold.data.tools.kalign import Kalign
from mindsponge_fold.data.tools.mmseqs import MMseqs2

__all__ = ["HHBlits", "HHSearch", "Hmmbuild", "Hmmsearch", "Jackhmmer", "Kalign", "MMseqs2"]
