"""The chain table of a training set (``OUT/chains.tsv`` of ``make-training-set``): one row per accepted chain.

Tab-separated, header line exactly ``chain_id length resolution release_date cluster_id cluster_size`` (tabs):

* ``chain_id``: ``<pdb_id lower-case>_<chain>`` (the name of ``OUT/features/<chain_id>.npz``);
* ``length``: number of residues; ``resolution``: in Å, empty when the entry has none (NMR, ...);
* ``release_date``: ``YYYY-MM-DD``; ``cluster_id``: a string; ``cluster_size``: members of that cluster in the table.

The loader samples chains by cluster and length from it (AlphaFold 2 supplement 1.2.5: "the probability of a chain
being sampled is inversely proportional to the size of the cluster it belongs to" and depends on its length).
"""
from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

from mindsponge_fold.common.errors import InputError
from mindsponge_fold.common.fileio import write_text

COLUMNS = ("chain_id", "length", "resolution", "release_date", "cluster_id", "cluster_size")
HEADER = "\t".join(COLUMNS)


@dataclasses.dataclass(frozen=True)
class ChainRecord:
    """One row of the chain table."""
    chain_id: str
    length: int
    resolution: float | None
    release_date: str
    cluster_id: str
    cluster_size: int

    def to_line(self) -> str:
        res = "" if self.resolution is None else f"{self.resolution:g}"
        return "\t".join((self.chain_id, str(self.length), res, self.release_date, self.cluster_id,
                          str(self.cluster_size)))


def _parse_row(fields: list, path, line: int) -> ChainRecord:
    if len(fields) != len(COLUMNS):
        raise InputError(f"expected {len(COLUMNS)} tab-separated columns, found {len(fields)}", path, line)
    chain_id, length, resolution, release_date, cluster_id, cluster_size = fields
    try:
        n, size = int(length), int(cluster_size)
        res = float(resolution) if resolution.strip() else None
    except ValueError:
        raise InputError("length / cluster_size must be integers and resolution a number (or empty)",
                         path, line) from None
    try:
        datetime.date.fromisoformat(release_date)
    except ValueError:
        raise InputError(f"release_date '{release_date}' is not YYYY-MM-DD", path, line) from None
    if not chain_id or not cluster_id or n <= 0 or size <= 0:
        raise InputError("empty chain_id / cluster_id or a non-positive length / cluster_size", path, line)
    return ChainRecord(chain_id, n, res, release_date, cluster_id, size)


def read_chain_table(path) -> list[ChainRecord]:
    """The rows of a chain table, in file order; a malformed table is an InputError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise InputError("chain table not found", path)
    lines = path.read_text().splitlines()
    if not lines or lines[0].rstrip("\r") != HEADER:
        raise InputError(f"not a chain table: the first line must be '{HEADER}'".replace("\t", "<TAB>"), path, 1)
    records, seen = [], set()
    for number, text in enumerate(lines[1:], start=2):
        if not text.strip():
            continue
        record = _parse_row(text.rstrip("\r").split("\t"), path, number)
        if record.chain_id in seen:
            raise InputError(f"chain '{record.chain_id}' is listed twice", path, number)
        seen.add(record.chain_id)
        records.append(record)
    return records


def write_chain_table(path, records) -> None:
    """Write the table atomically (a temporary file renamed into place)."""
    write_text(path, "\n".join([HEADER, *(r.to_line() for r in records)]) + "\n")
