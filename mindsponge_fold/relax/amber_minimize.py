"""Restrained Amber energy minimisation with OpenMM (one inner round of AlphaFold's relax).

The cleaned, protonated structure is parametrised with the Amber99SB force field (bonds to hydrogen constrained, no
solvent, no cut-off), harmonic position restraints ``0.5 * k * |x - x0|^2`` tie every restrained heavy atom to its
starting position, and OpenMM's L-BFGS minimiser runs to the force tolerance. Residues listed in ``exclude_residues``
(0-based, in topology order) get no restraints, so atoms involved in violations can move freely.

Units at this module's boundary: energies in kcal/mol, lengths in Angstrom, stiffness in kcal/mol/A^2. The tolerance
is AlphaFold's 2.39 "kcal/mol": OpenMM >= 8 reads the minimiser tolerance as a root-mean-square force, and the value
AlphaFold hands it converts to 10 kJ/mol/nm (OpenMM's default), which is what is used here.
"""
from __future__ import annotations

import io
import logging
import time

import numpy as np
import openmm
import openmm.app as app
import openmm.unit as unit

from mindsponge_fold.common.errors import ConfigError, InputError

log = logging.getLogger(__name__)

ENERGY = unit.kilocalories_per_mole
LENGTH = unit.angstrom
FORCE_FIELD = "amber99sb.xml"
RESTRAINT_SETS = ("non_hydrogen", "c_alpha")
GPU_PLATFORMS = ("CUDA", "OpenCL")


def available_platforms() -> list[str]:
    return [openmm.Platform.getPlatform(i).getName() for i in range(openmm.Platform.getNumPlatforms())]


def select_platform(name: str) -> openmm.Platform:
    """OpenMM platform by name (CPU, CUDA, OpenCL, Reference); ``auto`` takes a GPU platform when one is present."""
    available = available_platforms()
    if name == "auto":
        name = next((p for p in GPU_PLATFORMS if p in available), "CPU")
    if name not in available:
        raise ConfigError(f"relax.platform: OpenMM platform '{name}' is not available here "
                          f"(available: {', '.join(available)}, or 'auto')")
    return openmm.Platform.getPlatformByName(name)


def _restrained(atom, restraint_set: str) -> bool:
    if restraint_set == "non_hydrogen":
        return atom.element is None or atom.element.symbol != "H"
    return atom.name == "CA"


def add_position_restraints(system: openmm.System, topology: app.Topology, positions, stiffness: float,
                            restraint_set: str = "non_hydrogen", exclude_residues=()) -> int:
    """Add harmonic restraints (stiffness in kcal/mol/A^2) to the reference positions; return how many atoms."""
    if restraint_set not in RESTRAINT_SETS:
        raise ConfigError(f"restraint set must be one of {RESTRAINT_SETS}, got {restraint_set!r}")
    force = openmm.CustomExternalForce("0.5 * k * ((x - x0)^2 + (y - y0)^2 + (z - z0)^2)")
    force.addGlobalParameter("k", stiffness * ENERGY / LENGTH**2)
    for name in ("x0", "y0", "z0"):
        force.addPerParticleParameter(name)
    excluded = set(int(i) for i in exclude_residues)
    for atom in topology.atoms():
        if atom.residue.index not in excluded and _restrained(atom, restraint_set):
            force.addParticle(atom.index, positions[atom.index].value_in_unit(unit.nanometer))
    system.addForce(force)
    return force.getNumParticles()


def pdb_string(topology: app.Topology, positions) -> str:
    out = io.StringIO()
    app.PDBFile.writeFile(topology, positions, out, keepIds=True)
    return out.getvalue()


def minimize(pdb_str: str, *, max_iterations: int, tolerance: float, stiffness: float, exclude_residues=(),
             platform: str = "CPU", restraint_set: str = "non_hydrogen") -> dict:
    """One restrained minimisation of a cleaned, protonated PDB string.

    Returns ``einit``/``efinal`` (kcal/mol), ``posinit``/``pos`` ((N_atoms, 3) Angstrom, hydrogens included),
    ``min_pdb`` (minimised PDB string, input ids kept) and ``num_restrained``.
    """
    pdb = app.PDBFile(io.StringIO(pdb_str))
    try:
        system = app.ForceField(FORCE_FIELD).createSystem(pdb.topology, constraints=app.HBonds)
    except ValueError as e:  # "No template found for residue ..." and friends: the input, not OpenMM, is at fault
        reason = str(e).splitlines()[0].split("  ")[0]  # OpenMM's first sentence, without the FAQ pointer
        raise InputError(f"Amber cannot parametrise the structure: {reason}") from None
    num_restrained = 0
    if stiffness > 0:
        num_restrained = add_position_restraints(system, pdb.topology, pdb.positions, stiffness, restraint_set,
                                                 exclude_residues)
    integrator = openmm.LangevinIntegrator(0, 0.01, 0.0)  # never stepped: a Context needs an integrator
    simulation = app.Simulation(pdb.topology, system, integrator, select_platform(platform))
    simulation.context.setPositions(pdb.positions)

    def snapshot():
        state = simulation.context.getState(getEnergy=True, getPositions=True)
        return (state.getPotentialEnergy().value_in_unit(ENERGY),
                np.asarray(state.getPositions(asNumpy=True).value_in_unit(LENGTH)), state.getPositions())

    einit, posinit, _ = snapshot()
    simulation.minimizeEnergy(tolerance=tolerance * 4.184 * unit.kilojoule_per_mole / unit.nanometer,
                              maxIterations=int(max_iterations))
    efinal, pos, positions = snapshot()
    if not np.all(np.isfinite(pos)) or not np.isfinite(efinal):
        raise openmm.OpenMMException("minimisation produced non-finite coordinates or energy")
    return {"einit": einit, "efinal": efinal, "posinit": posinit, "pos": pos,
            "min_pdb": pdb_string(simulation.topology, positions), "num_restrained": num_restrained}


def minimize_with_retries(pdb_str: str, max_attempts: int = 100, **kwargs) -> dict:
    """:func:`minimize`, retried when OpenMM itself fails (as AlphaFold does); adds ``min_attempts`` and ``opt_time``.

    Input problems (:class:`InputError`, :class:`ConfigError`) are not retried.
    """
    start = time.time()
    last = None
    for attempt in range(1, max_attempts + 1):
        try:
            ret = minimize(pdb_str, **kwargs)
        except (openmm.OpenMMException, ArithmeticError) as e:
            last = e
            log.info("minimisation attempt %d of %d failed: %s", attempt, max_attempts, e)
            continue
        ret["min_attempts"] = attempt
        ret["opt_time"] = time.time() - start
        return ret
    raise RuntimeError(f"Amber minimisation failed after {max_attempts} attempts: {last}")
