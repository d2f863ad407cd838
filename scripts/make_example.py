#!/usr/bin/env python
"""Regenerate the bundled demo example (examples/2crb_A.fasta + examples/alignments/2crb_A/) from the full
precomputed alignments of 2crb chain A (OpenFold's public test data, aqlaboratory/openfold tests/test_data).

The example is small enough to commit: the query and the first --rows rows of each MSA (uniref90 Stockholm and BFD
A3M truncated, MGnify kept whole: it has 19 rows). Run from the repository root:

    .venv/bin/python scripts/make_example.py [--source ../shared/data/openfold_testdata/alignments/2crb_A]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mindsponge_fold.common.fileio import write_text  # noqa: E402
from mindsponge_fold.data import parsers  # noqa: E402

TARGET = "2crb_A"
DESCRIPTION = "2crb_A nuclear receptor-binding factor 2, MIT domain (PDB 2CRB chain A, solution NMR)"


def truncate_a3m(text: str, rows: int) -> str:
    """The first ``rows`` records of an A3M text (query first), lines kept as they are."""
    out, count = [], 0
    for line in text.splitlines():
        if line.startswith(">"):
            count += 1
            if count > rows:
                break
        if count:
            out.append(line)
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path,
                        default=ROOT.parent / "shared/data/openfold_testdata/alignments" / TARGET,
                        help="directory with uniref90_hits.sto, bfd_uniclust_hits.a3m, mgnify_hits.sto")
    parser.add_argument("--out", type=Path, default=ROOT / "examples", help="examples directory to write")
    parser.add_argument("--rows", type=int, default=128, help="MSA rows kept per file (query included)")
    args = parser.parse_args(argv)
    src, msa_dir = args.source, args.out / "alignments" / TARGET
    bfd = truncate_a3m(parsers.read_text(src / "bfd_uniclust_hits.a3m"), args.rows)
    query = parsers.parse_a3m(bfd).sequences[0]
    files = {
        "uniref90_hits.sto": parsers.truncate_stockholm(parsers.read_text(src / "uniref90_hits.sto"), args.rows),
        "bfd_uniclust_hits.a3m": bfd,
        "mgnify_hits.sto": parsers.read_text(src / "mgnify_hits.sto"),
    }
    for name, text in files.items():
        msa = parsers.parse_a3m(text) if name.endswith(".a3m") else parsers.parse_stockholm(text)
        if msa.sequences[0].replace("-", "") != query:
            raise SystemExit(f"{src / name}: the first row is not the query")
        write_text(msa_dir / name, text)
        print(f"{msa_dir / name}: {len(msa)} rows, {len(text.encode())} bytes")
    write_text(args.out / f"{TARGET}.fasta", f">{DESCRIPTION}\n{query}\n")
    print(f"{args.out / f'{TARGET}.fasta'}: {len(query)} residues")
    return 0


if __name__ == "__main__":
    sys.exit(main())
