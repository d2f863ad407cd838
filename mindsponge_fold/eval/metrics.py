"""Model-vs-native scores for one protein chain: TM-score, GDT_TS, GDT_HA, lDDT (all-atom and Calpha), Calpha RMSD.

Framework-free numpy. A chain is held as AlphaFold-style atom37 arrays (:class:`Chain`, built from a
``mindsponge_fold.common.protein.Protein`` with :meth:`Chain.from_protein`). :func:`score_model` matches residues
(``eval.matching``), then computes

* ``tm_score``, ``gdt_ts``, ``gdt_ha``: TMscore's superposition search over the matched Calpha pairs, normalised by
  the number of native residues with a Calpha (``n_native``) — ``eval.tmscore``;
* ``rmsd_ca``: Calpha RMSD over the matched pairs after one optimal (Kabsch) superposition on all of them;
* ``lddt`` (all heavy atoms) and ``lddt_ca``: OpenStructure-style lDDT against the native (``common.lddt``), with
  unmatched native residues counted as missing;
* ``plddt_mean``: mean model B-factor of the Calpha atoms when the B-factors look like pLDDT (some nonzero, all in
  [0, 100]); otherwise None.

``native_residues`` restricts the evaluation to part of the native (a domain): residues are matched on the whole
chains first, then only the selected native residues (and the model residues matched to them) are scored.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.common.lddt import lddt
from mindsponge_fold.eval.matching import ResidueMatch, match_residues
from mindsponge_fold.eval.superposition import superposed_rmsd
from mindsponge_fold.eval.tmscore import tm_gdt_search

CA = rc.atom_order["CA"]
METRIC_COLUMNS = ("target", "n_native", "n_matched", "tm_score", "gdt_ts", "gdt_ha", "lddt", "lddt_ca", "rmsd_ca",
                  "plddt_mean")


@dataclasses.dataclass
class Chain:
    """One protein chain in atom37 layout (AlphaFold's atom_types order)."""
    aatype: np.ndarray          # (N,) int, index into restypes_with_x
    residue_index: np.ndarray   # (N,) int, residue numbers as in the file
    atom_positions: np.ndarray  # (N, 37, 3)
    atom_mask: np.ndarray       # (N, 37)
    b_factors: np.ndarray | None = None  # (N, 37)
    chain_id: str = ""

    def __post_init__(self):
        self.aatype = np.asarray(self.aatype, int)
        self.residue_index = np.asarray(self.residue_index, int)
        self.atom_positions = np.asarray(self.atom_positions, np.float64)
        self.atom_mask = np.asarray(self.atom_mask) > 0
        if self.b_factors is not None:
            self.b_factors = np.asarray(self.b_factors, np.float64)

    def __len__(self) -> int:
        return int(self.aatype.shape[0])

    def take(self, index) -> "Chain":
        index = np.asarray(index, int)
        return Chain(self.aatype[index], self.residue_index[index], self.atom_positions[index], self.atom_mask[index],
                     None if self.b_factors is None else self.b_factors[index], self.chain_id)

    @classmethod
    def from_protein(cls, protein, chain: str | int | None = None) -> "Chain":
        """The chain ``chain`` (a chain id, or a position among the chains; default: the first) of a Protein."""
        n = np.asarray(protein.aatype).shape[0]
        chain_index = getattr(protein, "chain_index", None)
        chain_index = np.zeros(n, int) if chain_index is None else np.asarray(chain_index)
        order = list(dict.fromkeys(chain_index.tolist()))  # chain indices in file order
        ids = getattr(protein, "chain_ids", None)
        names = [str(ids[i]) if ids is not None and i < len(ids) else rc.PDB_CHAIN_IDS[i % rc.PDB_MAX_CHAINS]
                 for i in order]
        if not order:
            pick = None
        elif chain is None:
            pick = order[0]
        elif isinstance(chain, int):
            if not 0 <= chain < len(order):
                raise ValueError(f"chain position {chain} out of range ({len(order)} chains)")
            pick = order[chain]
        elif chain in names:
            pick = order[names.index(chain)]
        else:
            raise ValueError(f"no chain {chain!r} (chains: {', '.join(names)})")
        sel = chain_index == pick
        b = getattr(protein, "b_factors", None)
        return cls(np.asarray(protein.aatype)[sel], np.asarray(protein.residue_index)[sel],
                   np.asarray(protein.atom_positions)[sel], np.asarray(protein.atom_mask)[sel],
                   None if b is None else np.asarray(b)[sel],
                   names[order.index(pick)] if pick is not None else "")


@dataclasses.dataclass
class Scores:
    n_native: int
    n_matched: int
    tm_score: float
    gdt_ts: float
    gdt_ha: float
    lddt: float
    lddt_ca: float
    rmsd_ca: float
    plddt_mean: float | None
    match_method: str
    per_residue_lddt: np.ndarray  # (n native residues evaluated,) all-atom, NaN where not covered
    native_residue_index: np.ndarray

    def row(self, target: str) -> dict:
        return {"target": target, **{k: getattr(self, k) for k in METRIC_COLUMNS[1:]}}


def plddt_mean(chain: Chain) -> float | None:
    """Mean Calpha B-factor when it looks like pLDDT (some nonzero, all within [0, 100]), else None."""
    if chain.b_factors is None or len(chain) == 0:
        return None
    has_ca = chain.atom_mask[:, CA]
    values = np.where(has_ca, chain.b_factors[:, CA],
                      np.sum(chain.b_factors * chain.atom_mask, 1) / np.maximum(chain.atom_mask.sum(1), 1))
    values = values[chain.atom_mask.any(axis=1)]
    if values.size == 0 or not np.any(values != 0) or values.min() < 0 or values.max() > 100:
        return None
    return float(values.mean())


def _residue_names(aatype) -> list:
    return [rc.restype_1to3.get(rc.restypes_with_x[a], "UNK") if 0 <= a < 20 else "UNK" for a in aatype]


def score_model(model: Chain, native: Chain, matching: str = "auto", native_residues=None,
                match: ResidueMatch | None = None) -> Scores:
    """All metrics of ``model`` against ``native``; ``native_residues`` (residue numbers) restricts to a domain."""
    if match is None:
        match = match_residues(model.aatype, model.residue_index, native.aatype, native.residue_index, matching)
    keep_native = np.ones(len(native), bool)
    if native_residues is not None:
        keep_native = np.isin(native.residue_index, np.asarray(list(native_residues), int))
    keep_native &= native.atom_mask.any(axis=1)
    native_sel = np.flatnonzero(keep_native)
    position = np.full(len(native), -1)
    position[native_sel] = np.arange(native_sel.size)
    in_sel = position[match.native_index] >= 0
    m_idx, n_idx = match.model_index[in_sel], position[match.native_index[in_sel]]
    nat = native.take(native_sel)

    # Model atoms laid out on the selected native residues (unmatched residues: empty mask).
    model_pos = np.zeros_like(nat.atom_positions)
    model_mask = np.zeros_like(nat.atom_mask, dtype=bool)
    model_pos[n_idx] = model.atom_positions[m_idx]
    model_mask[n_idx] = model.atom_mask[m_idx] > 0

    names = _residue_names(nat.aatype)
    full = lddt(model_pos, model_mask, nat.atom_positions, nat.atom_mask, residue_names=names,
                atom_names=rc.atom_types)
    ca = lddt(model_pos[:, CA:CA + 1], model_mask[:, CA:CA + 1], nat.atom_positions[:, CA:CA + 1],
              nat.atom_mask[:, CA:CA + 1])

    n_native = int(nat.atom_mask[:, CA].sum())
    both_ca = model_mask[:, CA] & nat.atom_mask[:, CA]
    x, y = model_pos[both_ca, CA], nat.atom_positions[both_ca, CA]
    if n_native and len(x):
        sup = tm_gdt_search(x, y, n_native)
        tm, gdt_ts, gdt_ha = sup.tm_score, sup.gdt_ts, sup.gdt_ha
    else:
        tm, gdt_ts, gdt_ha = 0.0, 0.0, 0.0
    scored_model = model if native_residues is None else model.take(np.unique(m_idx))
    return Scores(n_native=n_native, n_matched=int(both_ca.sum()), tm_score=tm, gdt_ts=gdt_ts, gdt_ha=gdt_ha,
                  lddt=full.score, lddt_ca=ca.score, rmsd_ca=superposed_rmsd(x, y),
                  plddt_mean=plddt_mean(scored_model), match_method=match.method, per_residue_lddt=full.per_residue,
                  native_residue_index=nat.residue_index)
