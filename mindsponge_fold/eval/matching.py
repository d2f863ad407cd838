"""Which model residue corresponds to which native residue.

* ``by_number``: residues with the same residue number (what TMscore does).
* ``by_alignment``: a global sequence alignment of the two chains (Biopython's PairwiseAligner, BLOSUM62, gap open
  -10 / extend -0.5, end gaps free so a partial native or model is not penalised); aligned columns are matched,
  including substitutions.
* ``match_residues(..., mode="auto")``: by number when the numbering is consistent, i.e. the residues sharing a
  number have the same type (>= 95 %) and numbering pairs at least as many identical residues as the alignment does
  (always the case for a model numbered like its native, e.g. identical sequences); otherwise by alignment (model
  numbered 1..L against a native in PDB or UniProt numbering, renumbered chains, extra tags...).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from mindsponge_fold.common import residue_constants as rc

MATCH_MODES = ("auto", "number", "align")
_NUMBERING_MIN_IDENTITY = 0.95


@dataclasses.dataclass
class ResidueMatch:
    model_index: np.ndarray   # (K,) int, positions in the model chain
    native_index: np.ndarray  # (K,) int, positions in the native chain
    method: str               # "number" or "align"


def sequence_of(aatype) -> str:
    """One-letter sequence of an aatype array (indices into restypes_with_x; anything else -> X)."""
    letters = rc.restypes_with_x
    return "".join(letters[a] if 0 <= a < len(letters) else "X" for a in np.asarray(aatype, int))


def by_number(model_numbers, native_numbers) -> ResidueMatch:
    model_numbers = np.asarray(model_numbers)
    native_numbers = np.asarray(native_numbers)
    native_pos = {int(n): i for i, n in enumerate(native_numbers)}
    pairs = [(i, native_pos[int(n)]) for i, n in enumerate(model_numbers) if int(n) in native_pos]
    idx = np.asarray(pairs, int).reshape(-1, 2)
    return ResidueMatch(idx[:, 0], idx[:, 1], "number")


def _aligner():
    from Bio import Align
    from Bio.Align import substitution_matrices

    aligner = Align.PairwiseAligner()
    aligner.mode = "global"
    aligner.substitution_matrix = substitution_matrices.load("BLOSUM62")
    aligner.open_gap_score = -10.0
    aligner.extend_gap_score = -0.5
    aligner.end_gap_score = 0.0  # after the gap scores above, which would otherwise also set the end gaps
    return aligner


def by_alignment(model_sequence: str, native_sequence: str) -> ResidueMatch:
    if not model_sequence or not native_sequence:
        return ResidueMatch(np.zeros(0, int), np.zeros(0, int), "align")
    alignment = _aligner().align(model_sequence, native_sequence)[0]
    model_idx, native_idx = [], []
    for (m0, m1), (n0, n1) in zip(*alignment.aligned):
        model_idx.extend(range(m0, m1))
        native_idx.extend(range(n0, n1))
    return ResidueMatch(np.asarray(model_idx, int), np.asarray(native_idx, int), "align")


def _identical(match: ResidueMatch, model_aatype, native_aatype) -> np.ndarray:
    return np.asarray(model_aatype)[match.model_index] == np.asarray(native_aatype)[match.native_index]


def match_residues(model_aatype, model_numbers, native_aatype, native_numbers, mode: str = "auto") -> ResidueMatch:
    """Residue correspondence between a model chain and a native chain (see module docstring for the modes)."""
    if mode not in MATCH_MODES:
        raise ValueError(f"unknown residue matching mode {mode!r} (choose from {', '.join(MATCH_MODES)})")
    if mode == "number":
        return by_number(model_numbers, native_numbers)
    aligned = by_alignment(sequence_of(model_aatype), sequence_of(native_aatype))
    if mode == "align":
        return aligned
    numbered = by_number(model_numbers, native_numbers)
    n_shared = len(numbered.model_index)
    if n_shared:
        same = int(_identical(numbered, model_aatype, native_aatype).sum())
        if same >= _NUMBERING_MIN_IDENTITY * n_shared and same >= int(
                _identical(aligned, model_aatype, native_aatype).sum()):
            return numbered
    return aligned
