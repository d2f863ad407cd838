"""Amber relaxation of a predicted structure (AlphaFold 2 supplement section 1.8.6).

Pipeline (as AlphaFold's relax):

1. clean-up with PDBFixer (:mod:`.cleanup`): standard residues, no heterogens/waters, missing heavy atoms, hydrogens;
2. restrained Amber99SB minimisation (:mod:`.amber_minimize`): harmonic restraints (``stiffness`` kcal/mol/A^2) on
   heavy atoms, minimiser tolerance ``tolerance``, at most ``max_iterations`` steps (0 = until converged);
3. structural violations of the minimised model (bond lengths/angles, clashes; the checks of the supplement's
   violation loss, section 1.9.11) are counted with :mod:`mindsponge_fold.common.violations`; residues with a
   violation lose their restraints and the minimisation is repeated (hydrogens placed anew), for at most
   ``max_outer_iterations`` rounds or until no violation is left.

Extension beyond AlphaFold (``untangle``, on by default; ``untangle: false`` is AlphaFold's relax exactly): when
violations survive those rounds (typically a side chain threaded through a ring or a bond, which local minimisation
only stretches), the side chains of the still-violating residues are re-placed about their chi angles on the input
model (:mod:`.side_chains`) and the rounds are run again from there, with those residues unrestrained from the
start. The result with fewer violating residues is kept (the AlphaFold-style one on a tie). Models that come out of
the AlphaFold-style rounds clean never reach this step.

The relaxed PDB keeps the input's chain ids and residue numbers, has hydrogens, and carries the input's per-residue
B-factor (the CA's, e.g. pLDDT) on every atom of the residue.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np

from mindsponge_fold.common import protein as protein_lib
from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.common import violations as violations_lib
from mindsponge_fold.common.errors import ConfigError, InputError
from mindsponge_fold.relax import amber_minimize, cleanup, side_chains, utils

log = logging.getLogger(__name__)

CHAIN_NUMBERING_GAP = 100_000  # residue_index offset per chain for the violation checks


@dataclass(frozen=True)
class RelaxSettings:
    """The ``relax:`` section of the config (see mindsponge_fold/config/base.yaml)."""
    max_iterations: int = 0
    tolerance: float = 2.39
    stiffness: float = 10.0
    exclude_residues: tuple = ()
    max_outer_iterations: int = 3
    platform: str = "CPU"
    untangle: bool = True

    @classmethod
    def from_config(cls, config=None) -> "RelaxSettings":
        """Accept the whole config (uses its ``relax`` section), the section itself, a plain dict, or None."""
        if config is None:
            return cls()
        if isinstance(config, RelaxSettings):
            return config
        section = config.get("relax", config) if hasattr(config, "get") else config
        known = set(cls.__dataclass_fields__)
        unknown = set(section) - known
        if unknown:
            raise ConfigError(f"relax: unknown setting(s) {sorted(unknown)} (known: {sorted(known)})")
        settings = cls(**{k: (tuple(v) if k == "exclude_residues" else v) for k, v in section.items()})
        settings.check()
        return settings

    def check(self) -> None:
        if self.max_iterations < 0:
            raise ConfigError(f"relax.max_iterations must be >= 0 (0 = until convergence), got {self.max_iterations}")
        if self.max_outer_iterations < 1:
            raise ConfigError(f"relax.max_outer_iterations must be >= 1, got {self.max_outer_iterations}")
        if self.tolerance <= 0 or self.stiffness < 0:
            raise ConfigError("relax.tolerance must be > 0 and relax.stiffness >= 0")
        if not isinstance(self.untangle, bool):
            raise ConfigError(f"relax.untangle must be true or false, got {self.untangle!r}")
        amber_minimize.select_platform(self.platform)  # unavailable platform: fail before any work


def clean_protein(prot) -> tuple[str, dict]:
    """PDB string of ``prot`` cleaned and protonated for Amber; check the clean-up moved no input atom."""
    if prot.atom_mask.shape[0] == 0:
        raise InputError("the structure has no residues")
    if (prot.atom_mask.sum(axis=-1) == 0).any():
        raise InputError("Amber relax needs every residue to have atoms; at least one residue has none")
    unknown = np.flatnonzero(np.asarray(prot.aatype) >= rc.restype_num)
    if unknown.size:
        i = int(unknown[0])
        raise InputError(f"residue {prot.chain_name(int(prot.chain_index[i]))}{int(prot.residue_index[i])} is of "
                         f"unknown type (UNK): Amber relax needs the 20 standard amino acids")
    pdb_str = protein_lib.to_pdb(prot)
    cleaned, alterations = cleanup.fix_pdb(pdb_str)
    cleanup.check_cleaned_atoms(cleaned, pdb_str)
    return cleaned, alterations


def violation_metrics(prot) -> dict:
    """Structural violations of a heavy-atom model (``residue_violations``, ``num_residue_violations``, ``counts``
    per kind). Residue numbers are offset per chain so that the last residue of one chain and the first of the next
    are never checked as peptide-bonded, even when the numbering runs on across chains."""
    offset = np.asarray(prot.chain_index, np.int64) * CHAIN_NUMBERING_GAP
    return violations_lib.violation_metrics(dataclasses.replace(prot, residue_index=prot.residue_index + offset))


def minimisation_rounds(prot, settings: RelaxSettings, exclude: set) -> dict:
    """AlphaFold's outer loop: restrained minimisations, residues with violations losing their restraints after
    each round. Returns the last round's results with ``iteration`` (rounds run), ``num_exclusions``,
    ``first_einit``, ``attempts`` (over all rounds), ``alterations`` and the violation metrics of the final model."""
    pdb_str, alterations = clean_protein(prot)
    exclude = set(exclude)
    first = None
    attempts = 0
    ret: dict = {}
    for iteration in range(1, settings.max_outer_iterations + 1):
        ret = amber_minimize.minimize_with_retries(
            pdb_str, max_iterations=settings.max_iterations, tolerance=settings.tolerance,
            stiffness=settings.stiffness, exclude_residues=sorted(exclude), platform=settings.platform)
        first = first or ret
        attempts += ret["min_attempts"]
        minimised = protein_lib.from_pdb_string(ret["min_pdb"])
        metrics = violation_metrics(minimised)
        ret.update(metrics, iteration=iteration, num_exclusions=len(exclude))
        log.info("relax round %d: E %.1f -> %.1f kcal/mol, %d residue(s) with violations, %d unrestrained",
                 iteration, ret["einit"], ret["efinal"], metrics["num_residue_violations"], len(exclude))
        if metrics["num_residue_violations"] == 0 or iteration == settings.max_outer_iterations:
            break
        exclude |= set(int(i) for i in metrics["residue_violations"])
        pdb_str, _ = clean_protein(minimised)  # fresh hydrogens for the next round
    ret.update(first_einit=first["einit"], attempts=attempts, alterations=alterations)
    return ret


def run_pipeline(prot, settings: RelaxSettings) -> dict:
    """AlphaFold's rounds (:func:`minimisation_rounds`), then, when violations remain and ``settings.untangle``,
    side-chain re-placement of the violating residues and the rounds again (see the module docstring). Adds
    ``untangled`` ({residue index: (overlap score before, after)}, empty when the step did not run or changed
    nothing), ``untangle_kept`` (whether its result was kept) and ``alphafold_counts`` (violation counts after
    the AlphaFold-style rounds alone)."""
    num_res = prot.atom_mask.shape[0]
    exclude = set(int(i) for i in settings.exclude_residues)
    if any(i < 0 or i >= num_res for i in exclude):
        raise ConfigError(f"relax.exclude_residues must be 0-based residue indices below {num_res}")
    ret = minimisation_rounds(prot, settings, exclude)
    ret.update(untangled={}, untangle_kept=False, alphafold_counts=ret["counts"])
    if not settings.untangle or ret["num_residue_violations"] == 0:
        return ret
    if len(ret["structural_violations"]["total_per_residue_violations_mask"]) != num_res:
        log.info("relax: the clean-up removed residues (one-residue chains); no side-chain re-placement")
        return ret  # residue indices of the minimised model no longer match the input's
    stuck = [int(i) for i in ret["residue_violations"]]
    replaced, changed = side_chains.replace_side_chains(prot, stuck)
    log.info("relax: violations left in residue(s) %s; side chains re-placed: %s", stuck, sorted(changed))
    if not changed:
        return ret
    again = minimisation_rounds(replaced, settings, exclude | set(stuck))
    again.update(untangled=changed, untangle_kept=again["num_residue_violations"] < ret["num_residue_violations"])
    if not again["untangle_kept"]:
        ret.update(untangled=changed)
        return ret
    again.update(first_einit=ret["first_einit"], attempts=ret["attempts"] + again["attempts"],
                 iteration=ret["iteration"] + again["iteration"], alphafold_counts=ret["counts"])
    return again


def relax_protein(prot, config=None) -> tuple[str, dict]:
    """Amber-relax a :class:`mindsponge_fold.common.protein.Protein`.

    ``config``: the whole config, its ``relax`` section, a dict of those keys, or None (defaults). Returns
    ``(relaxed_pdb_str, debug)``; ``debug`` has initial/final energy (kcal/mol; initial = before the first round),
    ``attempts``, ``rmsd`` (all atoms incl. hydrogens, last round's start vs end, as AlphaFold reports),
    ``heavy_atom_rmsd_to_input``, violations before/after (residues flagged; counts per kind, also after the
    AlphaFold-style rounds alone: ``violation_counts_alphafold``), rounds run (both passes when the untangle step
    ran), ``untangled_residues`` / ``untangle_kept`` (side chains re-placed and whether that result was taken),
    time and platform.
    """
    settings = RelaxSettings.from_config(config)
    start = time.time()
    input_pdb = protein_lib.to_pdb(prot)
    before = violation_metrics(prot)
    out = run_pipeline(prot, settings)

    relaxed = utils.overwrite_b_factors(out["min_pdb"], utils.residue_b_factors(input_pdb))
    rmsd_input, num_compared = utils.heavy_atom_rmsd(input_pdb, relaxed)
    debug = {
        "initial_energy": out["first_einit"],
        "final_energy": out["efinal"],
        "attempts": out["attempts"],
        "rmsd": float(np.sqrt(((out["posinit"] - out["pos"]) ** 2).sum(-1).mean())),
        "heavy_atom_rmsd_to_input": rmsd_input,
        "heavy_atoms_compared": num_compared,
        "violations_before": before["num_residue_violations"],
        "violations_after": out["num_residue_violations"],
        "violation_counts_before": before["counts"],
        "violation_counts_after": out["counts"],
        "violation_counts_alphafold": out["alphafold_counts"],
        "residue_violations_after": [int(i) for i in out["residue_violations"]],
        "outer_iterations": out["iteration"],
        "num_exclusions": out["num_exclusions"],
        "untangled_residues": sorted(int(i) for i in out["untangled"]),
        "untangle_kept": bool(out["untangle_kept"]),
        "platform": amber_minimize.select_platform(settings.platform).getName(),
        "alterations": out["alterations"],
        "time_s": time.time() - start,
    }
    return relaxed, debug
