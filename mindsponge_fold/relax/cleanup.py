"""Structure clean-up before Amber relaxation (PDBFixer), following AlphaFold's relax pipeline.

What is done to a protein PDB before it can be parametrised by the Amber force field:

* non-standard residues with a known standard parent (MSE -> MET, ...) are replaced by the parent;
* heterogens and waters are removed (a predicted model has none; an input PDB may);
* selenium in a MET SD position (seleno-methionine written as MET) is turned into sulfur;
* chains of a single residue are removed (Amber has no template for a residue that is both N- and C-terminal);
* missing heavy atoms (e.g. the C-terminal OXT) are added, then hydrogens at pH 7.

Gaps in the chain (``SEQRES`` residues absent from the coordinates) are NOT modelled: relaxation must keep the input's
residues one-to-one. Atoms present in the input are never moved by the clean-up (:func:`check_cleaned_atoms`).
"""
from __future__ import annotations

import io

import numpy as np
import openmm.app as app
import openmm.unit as unit
import pdbfixer

from mindsponge_fold.common.errors import InputError


def _residue_key(residue) -> tuple:
    return residue.chain.id, residue.id, residue.insertionCode


def fix_pdb(pdb_str: str, ph: float = 7.0) -> tuple[str, dict]:
    """Clean ``pdb_str`` with PDBFixer; return (cleaned PDB string with hydrogens, alterations made).

    Residue numbering and chain ids of the input are kept, so residues of the output map one-to-one (by chain id,
    residue number and insertion code) onto the input's residues, minus removed single-residue chains / heterogens.
    """
    pdb_str, breaks = split_at_chain_breaks(pdb_str)
    try:
        fixer = pdbfixer.PDBFixer(pdbfile=io.StringIO(pdb_str))
    except Exception as e:  # openmm's PDB reader raises bare Exceptions / ValueErrors on malformed records
        raise InputError(f"PDBFixer cannot read the structure: {_one_line(e)}") from None
    alterations: dict = {"chain_breaks": breaks}

    fixer.findNonstandardResidues()
    alterations["nonstandard_residues"] = [(_residue_key(r), name) for r, name in fixer.nonstandardResidues]
    fixer.replaceNonstandardResidues()

    before = {r.name for r in fixer.topology.residues()}
    fixer.removeHeterogens(keepWater=False)
    alterations["removed_heterogens"] = sorted(before - {r.name for r in fixer.topology.residues()})

    alterations["Se_in_MET"] = _replace_met_selenium(fixer.topology)

    single = [c for c in fixer.topology.chains() if len(list(c.residues())) <= 1]
    alterations["removed_chains"] = [c.id for c in single]
    if single:
        fixer.removeChains(chainIndices=[c.index for c in single])
    if next(fixer.topology.residues(), None) is None:
        raise InputError("no protein chain of two or more residues left after removing heterogens and waters")

    fixer.findMissingResidues()
    alterations["unmodelled_missing_residues"] = len(fixer.missingResidues)
    fixer.missingResidues = {}  # keep residues one-to-one with the input: gaps stay gaps
    fixer.findMissingAtoms()
    alterations["missing_heavy_atoms"] = {str(_residue_key(r)): [a.name for a in atoms]
                                          for r, atoms in fixer.missingAtoms.items()}
    alterations["missing_terminals"] = {str(_residue_key(r)): list(names)
                                        for r, names in fixer.missingTerminals.items()}
    try:
        fixer.addMissingAtoms(seed=0)
        fixer.addMissingHydrogens(ph)
    except Exception as e:
        raise InputError(f"PDBFixer cannot complete the structure: {_one_line(e)}") from None

    out = io.StringIO()
    app.PDBFile.writeFile(fixer.topology, fixer.positions, out, keepIds=True)
    return out.getvalue(), alterations


def split_at_chain_breaks(pdb_str: str) -> tuple[str, list]:
    """Insert a TER record where the residue number jumps by more than one within a chain.

    OpenMM bonds consecutive residues of a chain whatever their numbering, so a gap (unmodelled residues) would be
    closed by one stretched peptide bond; after a TER the two segments are separate molecules, each with its own
    termini. The chain id is unchanged, so readers that merge same-id segments (Biopython) see the original chain.
    Returns the new text and the (chain, residue number) of each residue that now starts a segment.
    """
    out, breaks = [], []
    previous = None  # (chain id, residue number) of the last ATOM/HETATM record; None after TER/MODEL/ENDMDL
    for line in pdb_str.splitlines():
        if line.startswith(("ATOM  ", "HETATM")):
            try:
                current = (line[21], int(line[22:26]))
            except ValueError:  # malformed residue number: left for the PDB reader to report
                current = None
            if previous and current and current[0] == previous[0] and current[1] - previous[1] > 1:
                out.append("TER")
                breaks.append(current)
            previous = current
        elif line.startswith(("TER", "MODEL", "ENDMDL")):
            previous = None
        out.append(line)
    return "\n".join(out) + "\n", breaks


def _replace_met_selenium(topology) -> list:
    """Selenium written as the SD atom of a MET residue becomes sulfur (Amber has no selenium parameters)."""
    changed = []
    for residue in topology.residues():
        if residue.name != "MET":
            continue
        for atom in residue.atoms():
            if atom.name == "SD" and atom.element is not None and atom.element.symbol == "Se":
                atom.element = app.element.sulfur
                changed.append(_residue_key(residue))
    return changed


def _heavy_atom_table(pdb: app.PDBFile) -> dict:
    xyz = np.asarray(pdb.getPositions().value_in_unit(unit.angstrom))
    return {(_residue_key(a.residue), a.residue.name, a.name): xyz[a.index]
            for a in pdb.topology.atoms() if a.element is None or a.element.symbol != "H"}


def check_cleaned_atoms(cleaned_pdb: str, reference_pdb: str, atol: float = 1e-3) -> None:
    """Raise if the clean-up moved (or renamed the residue of) an atom that was present in the reference.

    Atoms of residues that were removed (heterogens, single-residue chains) or replaced (non-standard residues) are
    not compared. ``atol`` (Angstrom) covers the PDB format's 3-decimal rounding.
    """
    cleaned = _heavy_atom_table(app.PDBFile(io.StringIO(cleaned_pdb)))
    reference = _heavy_atom_table(app.PDBFile(io.StringIO(reference_pdb)))
    for key, ref_xyz in reference.items():
        xyz = cleaned.get(key)
        if xyz is not None and not np.allclose(xyz, ref_xyz, atol=atol):
            (chain, resnum, icode), resname, atom = key
            raise RuntimeError(f"clean-up moved atom {atom} of {resname} {chain}{resnum}{icode.strip()}: "
                               f"{ref_xyz.tolist()} -> {xyz.tolist()}")


def _one_line(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]
