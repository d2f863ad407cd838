"""PDB-string helpers for the relax pipeline: per-residue B-factors and heavy-atom RMSD between two models.

Residues are matched by (chain id, residue number, insertion code), which the clean-up and minimisation keep from
the input, and atoms by name; hydrogens are ignored for the RMSD.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
from Bio.PDB import PDBIO, PDBParser
from Bio.PDB.PDBExceptions import PDBConstructionWarning


def parse_structure(pdb_str: str):
    """Biopython structure of a PDB string (first model only is used by the helpers below)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PDBConstructionWarning)
        return PDBParser(QUIET=True).get_structure("relax", io.StringIO(pdb_str))


def _residue_key(residue) -> tuple:
    _, resseq, icode = residue.get_id()
    return residue.get_parent().id, int(resseq), icode.strip()


def _first_model(structure):
    return next(iter(structure))


def residue_b_factors(pdb_str: str) -> dict:
    """{(chain, resseq, icode): B-factor}, the CA's B-factor (or the residue's first atom's when it has no CA)."""
    out = {}
    for residue in _first_model(parse_structure(pdb_str)).get_residues():
        atom = residue["CA"] if "CA" in residue else next(iter(residue.get_atoms()))
        out[_residue_key(residue)] = float(atom.get_bfactor())
    return out


def overwrite_b_factors(pdb_str: str, b_factors: dict) -> str:
    """Set every atom's B-factor to its residue's value in ``b_factors`` (keys as in :func:`residue_b_factors`).

    A residue absent from ``b_factors`` is an error (relaxation must not add residues).
    """
    structure = parse_structure(pdb_str)
    for residue in _first_model(structure).get_residues():
        key = _residue_key(residue)
        if key not in b_factors:
            raise ValueError(f"relaxed structure has residue {key} that the input does not have")
        for atom in residue.get_atoms():
            atom.set_bfactor(b_factors[key])
    out = io.StringIO()
    pdb_io = PDBIO()
    pdb_io.set_structure(structure)
    pdb_io.save(out)
    return out.getvalue()


def heavy_atom_coordinates(pdb_str: str) -> dict:
    """{(chain, resseq, icode, atom name): xyz} for the non-hydrogen atoms of the first model."""
    out = {}
    for atom in _first_model(parse_structure(pdb_str)).get_atoms():
        if atom.element in ("H", "D"):
            continue
        out[_residue_key(atom.get_parent()) + (atom.get_name(),)] = atom.get_coord().astype(np.float64)
    return out


def heavy_atom_rmsd(pdb_a: str, pdb_b: str) -> tuple[float, int]:
    """RMSD (Angstrom, no superposition) over the heavy atoms both models have; returns (rmsd, atoms compared)."""
    a, b = heavy_atom_coordinates(pdb_a), heavy_atom_coordinates(pdb_b)
    common = [k for k in a if k in b]
    if not common:
        return float("nan"), 0
    diff = np.stack([a[k] for k in common]) - np.stack([b[k] for k in common])
    return float(np.sqrt((diff ** 2).sum(-1).mean())), len(common)
