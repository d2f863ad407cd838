"""Sequence clusters of a training set (AlphaFold 2 supplement 1.2.5: chains are sampled with probability inversely
proportional to the size of their 40% sequence-identity cluster).

Two sources:

* a cluster file in the PDB's clustering format (``clusters-by-entity-40.txt``): one cluster per line, its members
  space-separated ``PDBID_ENTITYID`` (:func:`read_cluster_file`); a chain belongs to the cluster of its entity;
* without one, :func:`greedy_identity_clusters`: chains longest first, each joins the first cluster whose
  representative it matches at >= ``threshold`` identity (identical residues of a global BLOSUM62 alignment over
  the shorter sequence) with the alignment covering >= ``min_coverage`` of both sequences (the PDB clusters with
  MMseqs2 at 80% coverage; without it a short chain "matches" a long one by scattered identities), else starts a
  cluster of its own. Quadratic in the number of clusters: meant for small sets; use the PDB's file for the PDB.
"""
from __future__ import annotations

from pathlib import Path

from mindsponge_fold.common.errors import InputError


def read_cluster_file(path) -> dict:
    """``{PDBID_ENTITYID (upper-case PDB id): cluster id}``; the cluster id is the line's first member."""
    path = Path(path)
    if not path.is_file():
        raise InputError("cluster file not found", path)
    clusters = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        members = line.split()
        if not members:
            continue
        for member in members:
            pdb, sep, entity = member.partition("_")
            if not sep or len(pdb) != 4 or not entity:
                raise InputError(f"cluster member '{member}' is not PDBID_ENTITYID", path, number)
            clusters.setdefault(f"{pdb.upper()}_{entity}", members[0].upper())
    if not clusters:
        raise InputError("no clusters in this file (expected lines of space-separated PDBID_ENTITYID)", path)
    return clusters


def sequence_identity(a: str, b: str, aligner=None) -> tuple:
    """``(identity, coverage)`` of the best global BLOSUM62 alignment (gap open -11, extend -1): identical aligned
    residues over the length of the shorter sequence, and the smaller of the two aligned fractions."""
    if a == b:
        return 1.0, 1.0
    if not a or not b:
        return 0.0, 0.0
    alignment = (aligner or _aligner()).align(a, b)[0]
    same = aligned = 0
    for (a0, a1), (b0, b1) in zip(*alignment.aligned):
        same += sum(x == y for x, y in zip(a[a0:a1], b[b0:b1]))
        aligned += a1 - a0
    return same / min(len(a), len(b)), aligned / max(len(a), len(b))


def _aligner():
    from Bio.Align import PairwiseAligner, substitution_matrices
    aligner = PairwiseAligner(mode="global", substitution_matrix=substitution_matrices.load("BLOSUM62"))
    aligner.open_gap_score, aligner.extend_gap_score = -11.0, -1.0
    return aligner


def _similar(a: str, b: str, threshold: float, min_coverage: float, aligner) -> bool:
    if min(len(a), len(b)) < min_coverage * max(len(a), len(b)):
        return False                     # the alignment cannot cover both
    identity, coverage = sequence_identity(a, b, aligner)
    return identity >= threshold and coverage >= min_coverage


def greedy_identity_clusters(sequences: dict, threshold: float = 0.4, min_coverage: float = 0.8) -> dict:
    """``{chain id: cluster id}`` (the cluster's representative, its longest chain) for ``{chain id: sequence}``."""
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"the clustering identity threshold must be in (0, 1], got {threshold}")
    if not 0.0 <= min_coverage <= 1.0:
        raise InputError(f"the clustering coverage must be in [0, 1], got {min_coverage}")
    aligner = _aligner()
    order = sorted(sequences, key=lambda c: (-len(sequences[c]), c))
    representatives, out, exact = [], {}, {}
    for chain in order:
        seq = sequences[chain]
        if seq in exact:                 # identical chains (homo-oligomers): no alignment needed
            out[chain] = exact[seq]
            continue
        found = next((r for r in representatives
                      if _similar(seq, sequences[r], threshold, min_coverage, aligner)), None)
        if found is None:
            representatives.append(chain)
            found = chain
        out[chain] = exact[seq] = found
    return out
