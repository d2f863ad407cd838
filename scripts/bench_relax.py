"""Amber relax on AlphaFold's relax test structures: violations by kind, RMSD to the input, energy, time.

    python scripts/bench_relax.py [--files with_violations_casp14.pdb ...] [--no-untangle] [--platform CPU]

Reads ../shared/data/alphafold_testdata/relax/ (or --dir); prints one table row per file.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mindsponge_fold.common import protein as protein_lib  # noqa: E402
from mindsponge_fold.relax import utils  # noqa: E402
from mindsponge_fold.relax.relax import relax_protein  # noqa: E402

FILES = ("model_output.pdb", "with_violations.pdb", "with_violations_casp14.pdb", "multiple_disulfides_target.pdb")
DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "alphafold_testdata" / "relax"


def ca_rmsd(pdb_a: str, pdb_b: str) -> float:
    a, b = utils.heavy_atom_coordinates(pdb_a), utils.heavy_atom_coordinates(pdb_b)
    keys = [k for k in a if k[-1] == "CA" and k in b]
    return float(np.sqrt(np.mean([((a[k] - b[k]) ** 2).sum() for k in keys])))


def counts(c: dict) -> str:
    return f"{c['between_residue_bond']}/{c['between_residue_clash']}/{c['within_residue']}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--files", nargs="*", default=list(FILES))
    parser.add_argument("--no-untangle", action="store_true", help="AlphaFold's relax only")
    parser.add_argument("--platform", default="CPU")
    parser.add_argument("--out-dir", type=Path, default=None, help="write the relaxed PDBs here")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = {"untangle": not args.no_untangle, "platform": args.platform}
    print("| file | res | violating residues (bond/clash/within) before -> AF rounds -> final | rounds | "
          "re-placed | heavy RMSD | CA RMSD | E init -> final (kcal/mol) | time |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.files:
        text = (args.dir / name).read_text()
        prot = protein_lib.from_pdb_string(text)
        relaxed, d = relax_protein(prot, cfg)
        if args.out_dir:
            args.out_dir.mkdir(parents=True, exist_ok=True)
            (args.out_dir / name).write_text(relaxed)
        print(f"| {name} | {prot.num_res} | {d['violations_before']} ({counts(d['violation_counts_before'])}) -> "
              f"{counts(d['violation_counts_alphafold'])} -> {d['violations_after']} "
              f"({counts(d['violation_counts_after'])}) | {d['outer_iterations']} | "
              f"{d['untangled_residues'] if d['untangle_kept'] else '-'} | {d['heavy_atom_rmsd_to_input']:.3f} | "
              f"{ca_rmsd(text, relaxed):.3f} | {d['initial_energy']:.3g} -> {d['final_energy']:.1f} | "
              f"{d['time_s']:.0f} s |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
