"""Amber relax (mindsponge_fold.relax) on AlphaFold's relax test structures."""
import io

import numpy as np
import pytest

pytest.importorskip("openmm")
pytest.importorskip("pdbfixer")

import openmm.app as app  # noqa: E402

from helpers import shared_path  # noqa: E402
from mindsponge_fold.common.errors import ConfigError  # noqa: E402
from mindsponge_fold.relax import amber_minimize, cleanup, utils  # noqa: E402


def _relax_file(name):
    return shared_path("data", "alphafold_testdata", "relax", name).read_text()


def _atoms(pdb_str):
    pdb = app.PDBFile(io.StringIO(pdb_str))
    return [(a.residue.chain.id, a.residue.id, a.residue.name, a.name, a.element.symbol)
            for a in pdb.topology.atoms()]


def _heavy(atoms):
    return [a for a in atoms if a[4] != "H"]


def _strip_hydrogens(pdb_str):
    return "".join(line + "\n" for line in pdb_str.splitlines()
                   if not (line.startswith("ATOM") and line[76:78].strip() == "H"))


def test_fix_pdb_adds_oxt_and_hydrogens_and_moves_nothing():
    source = _strip_hydrogens(_relax_file("model_output.pdb"))
    fixed, alterations = cleanup.fix_pdb(source)
    before, after = _atoms(source), _atoms(fixed)
    assert not [a for a in before if a[4] == "H"]
    added = set(_heavy(after)) - set(_heavy(before))
    assert added == {("A", "5", "VAL", "OXT", "O")}
    assert list(alterations["missing_terminals"].values()) == [["OXT"]]
    hydrogens = [a for a in after if a[4] == "H"]
    assert {"H2", "H3"} <= {a[3] for a in hydrogens if a[1] == "1"}  # charged N-terminus
    assert len(hydrogens) > len(_heavy(after))  # a protein has more H than heavy atoms
    cleanup.check_cleaned_atoms(fixed, source)


def test_fix_pdb_removes_water_ligands_and_single_residue_chains():
    lines = _relax_file("model_output.pdb").splitlines()
    atoms = [line for line in lines if line.startswith("ATOM")]
    lone = [line[:21] + "B" + line[22:] for line in atoms if line[22:26].strip() == "3"]  # one-residue chain B
    het = ["HETATM  200  O   HOH W   1      10.000  10.000  10.000  1.00  0.00           O  ",
           "HETATM  201 ZN    ZN Z   1      12.000  10.000  10.000  1.00  0.00          ZN  "]
    fixed, alterations = cleanup.fix_pdb("\n".join(atoms + ["TER"] + lone + ["TER"] + het + ["END"]) + "\n")
    residues = {(a[0], a[2]) for a in _atoms(fixed)}
    assert {r[0] for r in residues} == {"A"}
    assert alterations["removed_chains"] == ["B"]
    assert {"HOH", "ZN"} <= set(alterations["removed_heterogens"])


def test_fix_pdb_replaces_selenomethionine():
    lines = []
    for line in _relax_file("model_output.pdb").splitlines():
        if line.startswith("ATOM") and line[17:20] == "MET":
            if line[12:16] == " SD ":
                line = line[:12] + "SE  " + line[16:76] + "SE"
            line = "HETATM" + line[6:17] + "MSE" + line[20:]
        lines.append(line)
    fixed, alterations = cleanup.fix_pdb("\n".join(lines) + "\n")
    assert alterations["nonstandard_residues"][0][1] == "MET"
    first = [a for a in _atoms(fixed) if a[1] == "1"]
    assert {a[2] for a in first} == {"MET"} and ("A", "1", "MET", "SD", "S") in first


def test_check_cleaned_atoms_detects_a_moved_atom():
    source = _relax_file("model_output.pdb")
    fixed, _ = cleanup.fix_pdb(source)
    moved = [line[:30] + f"{float(line[30:38]) + 0.5:8.3f}" + line[38:] if line[12:16] == " CA " else line
             for line in fixed.splitlines()]
    with pytest.raises(RuntimeError, match="moved atom CA"):
        cleanup.check_cleaned_atoms("\n".join(moved) + "\n", source)


def test_restrained_minimisation_lowers_energy_and_keeps_heavy_atoms():
    source = _relax_file("model_output.pdb")
    fixed, _ = cleanup.fix_pdb(source)
    out = amber_minimize.minimize_with_retries(fixed, max_iterations=0, tolerance=2.39, stiffness=10.0)
    assert out["min_attempts"] == 1
    assert out["efinal"] < out["einit"]
    assert out["num_restrained"] == len(_heavy(_atoms(fixed)))
    rmsd, n = utils.heavy_atom_rmsd(source, out["min_pdb"])
    assert n == len(_heavy(_atoms(source))) and 0.0 < rmsd < 0.5
    assert _atoms(out["min_pdb"]) == _atoms(fixed)  # same atoms, same order, input ids kept


def test_restraints_exclusion_and_stiffness():
    fixed, _ = cleanup.fix_pdb(_relax_file("model_output.pdb"))
    free = amber_minimize.minimize(fixed, max_iterations=50, tolerance=2.39, stiffness=10.0,
                                   exclude_residues=range(5))
    assert free["num_restrained"] == 0
    ca_only = amber_minimize.minimize(fixed, max_iterations=1, tolerance=2.39, stiffness=10.0,
                                      exclude_residues=[0], restraint_set="c_alpha")
    assert ca_only["num_restrained"] == 4
    # Restraint energy 0.5 k d^2 is zero at the start (reference = starting positions): same initial energy.
    assert ca_only["einit"] == pytest.approx(free["einit"], rel=1e-6)


def test_platform_selection():
    assert amber_minimize.select_platform("CPU").getName() == "CPU"
    assert amber_minimize.select_platform("auto").getName() in ("CUDA", "OpenCL", "CPU")
    missing = next((p for p in ("CUDA", "OpenCL") if p not in amber_minimize.available_platforms()), None)
    if missing is not None:
        with pytest.raises(ConfigError, match=f"'{missing}' is not available"):
            amber_minimize.select_platform(missing)
    with pytest.raises(ConfigError):
        amber_minimize.select_platform("TPU")


def test_b_factor_overwrite_per_residue():
    source = _relax_file("model_output.pdb")
    fixed, _ = cleanup.fix_pdb(source)
    per_residue = utils.residue_b_factors(source)
    assert len(set(per_residue.values())) > 1
    out = utils.overwrite_b_factors(fixed, per_residue)
    for residue in next(iter(utils.parse_structure(out))).get_residues():
        key = (residue.get_parent().id, residue.get_id()[1], "")
        assert {a.get_bfactor() for a in residue} == {per_residue[key]}
    with pytest.raises(ValueError, match="does not have"):
        utils.overwrite_b_factors(fixed, {k: v for k, v in per_residue.items() if k[1] != 3})
