"""``mindsponge-fold relax``: Amber-relax a PDB file (see :mod:`mindsponge_fold.relax.relax`)."""
from __future__ import annotations

import argparse
import ast
import logging
from pathlib import Path

from mindsponge_fold.commands import options
from mindsponge_fold.common.errors import InputError, warn


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--pdb", required=True, help="input PDB (one model; B-factors, e.g. pLDDT, are carried over)")
    parser.add_argument("--out", required=True, help="relaxed PDB to write (hydrogens included)")
    options.add_config_options(parser, help_default="base; its relax: section is used")
    parser.add_argument("--max-iterations", type=int, default=None,
                        help="minimiser steps per round (0 = until convergence; default from config: 0)")
    parser.add_argument("--max-outer-iterations", type=int, default=None,
                        help="violation-driven minimisation rounds (default from config: 3)")
    parser.add_argument("--platform", default=None, choices=["CPU", "CUDA", "OpenCL", "Reference", "auto"],
                        help="OpenMM platform (default from config: CPU; auto = a GPU platform when present)")
    parser.add_argument("--no-untangle", action="store_true",
                        help="AlphaFold's relax only: no side-chain re-placement when violations remain "
                             "(relax.untangle: false)")
    parser.add_argument("--debug-json", default=None, help="also write the debug data (energies, RMSD...) here")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every minimisation round")


def read_protein(path: Path):
    """The protein of a PDB file; InputError naming the file when it is not one."""
    from mindsponge_fold.common import protein as protein_lib

    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read PDB file ({e.strerror if isinstance(e, OSError) else 'not text'})",
                         path=path) from None
    if not any(line.startswith("ATOM") for line in text.splitlines()):
        raise InputError("no ATOM records: not a protein PDB file", path=path)
    try:
        prot = protein_lib.from_pdb_string(text)
    except InputError as e:
        raise InputError(e.problem, path=path) from None
    except (ValueError, KeyError, IndexError) as e:
        raise InputError(f"cannot parse PDB: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
                         path=path) from None
    if prot.atom_mask.shape[0] == 0:
        raise InputError("no standard protein residues", path=path)
    return prot


def run(args) -> int:
    from mindsponge_fold.common import fileio
    from mindsponge_fold.relax.relax import relax_protein

    fileio.check_output_file(args.out)       # before the minimisation, not after it
    if args.debug_json:
        fileio.check_output_file(args.debug_json)

    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    overrides = [f"relax.{key}={value}" for key, value in (("max_iterations", args.max_iterations),
                                                          ("max_outer_iterations", args.max_outer_iterations),
                                                          ("platform", args.platform)) if value is not None]
    if args.no_untangle:
        overrides.append("relax.untangle=false")
    cfg = options.load_config_from_args(args, extra_overrides=overrides)
    path = Path(args.pdb)
    prot = read_protein(path)
    try:
        relaxed, debug = relax_protein(prot, cfg)
    except InputError as e:
        raise InputError(e.problem, path=path) from None
    rebuilt = debug["alterations"].get("missing_heavy_atoms") or {}
    if rebuilt:
        (chain, number, code), atoms = ast.literal_eval(next(iter(rebuilt))), next(iter(rebuilt.values()))
        warn(f"{sum(len(a) for a in rebuilt.values())} heavy atom(s) missing in {len(rebuilt)} residue(s) were "
             f"rebuilt by PDBFixer (first: {', '.join(atoms)} of residue {chain}{number}{code.strip()}): the "
             "relaxed model has atoms the input did not", path)
    fileio.write_text(args.out, relaxed)
    if args.debug_json:
        fileio.write_json(args.debug_json, debug, indent=1)
    print(f"relaxed {path} -> {args.out}: E {debug['initial_energy']:.1f} -> {debug['final_energy']:.1f} kcal/mol, "
          f"violating residues {debug['violations_before']} -> {debug['violations_after']}, "
          f"heavy-atom RMSD to input {debug['heavy_atom_rmsd_to_input']:.3f} A, "
          f"{debug['outer_iterations']} round(s), {debug['time_s']:.1f} s on {debug['platform']}"
          + (f", side chains re-placed: {debug['untangled_residues']}" if debug["untangle_kept"] else ""))
    return 0
