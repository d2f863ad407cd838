"""Inputs of ``mindsponge-fold evaluate``: structure files, prediction <-> native pairing, domain definitions.

Pairing rule (documented in the CLI help):

* Each native file ``<TARGET>.pdb`` / ``.cif`` / ``.mmcif`` / ``.ent`` (optionally ``.gz``) in the natives
  directory defines target ``<TARGET>`` (its file stem). ``--natives`` may also be one file. The first chain of each
  file is evaluated.
* A prediction matches target T when its name (file stem, or directory name) is T or starts with T followed by
  ``_``, ``-`` or ``.`` (``T1043.pdb``, ``T1043_model_1.pdb``, ``T1043-relaxed.cif``, directory ``T1043/``). When
  several target ids fit, the longest wins (``T1043s1_x`` goes to ``T1043s1``, not ``T1043``).
* Inside a matching directory, ``ranked_0.*`` is used if present, otherwise the first structure file in name order.
* When several predictions match one target: an exact name match first, then ``ranked_0``, then name order. The file
  used is printed and listed in metrics.md.
* ``--predictions`` may also be one file; with a single native it is paired with it whatever its name.

Domain file (TSV, ``#`` comments, optional header line starting with ``target``): ``target  domain  ranges`` with
ranges in native residue numbering, e.g. ``T1043  D1  1-70,90-148``.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from mindsponge_fold.common import protein
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.eval.metrics import CA, Chain

STRUCTURE_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif")  # each optionally gzipped (.gz)
_SEPARATORS = "_-."


def structure_stem(path: Path) -> str | None:
    """'T1043' for T1043.pdb / T1043.cif.gz ...; None when the name is not a structure file name."""
    name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    for suffix in STRUCTURE_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return None


def is_structure_file(path: Path) -> bool:
    return path.is_file() and structure_stem(path) is not None


def read_chain(path, chain=None, role: str = "structure") -> Chain:
    """First chain (or ``chain``) of a PDB/mmCIF file (``common.protein``); bad files raise a one-line InputError,
    and so does a chain without any CA atom (every metric superposes or scores on CA atoms: with none, TM-score 0
    and lDDT 1 of '0/0 matched' would look like an answer). ``role`` names the file in that message."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such structure file", path)
    try:
        result = Chain.from_protein(protein.from_file(path), chain)
    except InputError as e:
        raise e if e.path else InputError(e.problem, path, e.line) from e
    except Exception as e:  # anything else a parser raises is still a property of this file
        raise InputError(f"cannot read structure: {' '.join(str(e).split()) or type(e).__name__}", path) from e
    if len(result) == 0 or not result.atom_mask.any():
        raise InputError("no protein residues with coordinates", path)
    if not result.atom_mask[:, CA].any():
        raise InputError(f"{role} chain {result.chain_id or '?'} has no CA atoms ({len(result)} residues, "
                         f"{int(result.atom_mask.sum())} atoms): it cannot be scored (TM-score, GDT, lDDT and RMSD "
                         f"are computed on matched CA atoms)", path)
    return result


def find_natives(natives) -> dict:
    """Target id -> native file."""
    natives = Path(natives)
    if natives.is_file():
        return {structure_stem(natives) or natives.stem: natives}
    if not natives.is_dir():
        raise InputError("natives directory does not exist", natives)
    found = {structure_stem(p): p for p in sorted(natives.iterdir()) if is_structure_file(p)}
    if not found:
        raise InputError(f"no structure files ({', '.join(STRUCTURE_SUFFIXES)}) in the natives directory", natives)
    return found


def _target_of(name: str, targets) -> str | None:
    best = None
    for t in targets:
        if name == t or (name.startswith(t) and name[len(t)] in _SEPARATORS):
            if best is None or len(t) > len(best):
                best = t
    return best


def _file_in_dir(directory: Path) -> Path | None:
    files = sorted(p for p in directory.iterdir() if is_structure_file(p))
    ranked = [p for p in files if structure_stem(p) == "ranked_0"]
    return (ranked or files or [None])[0]


def pair_predictions(predictions, targets) -> dict:
    """Target id -> prediction file, following the module's pairing rule."""
    predictions = Path(predictions)
    targets = list(targets)
    if predictions.is_file():
        if len(targets) == 1:
            return {targets[0]: predictions}
        t = _target_of(structure_stem(predictions) or predictions.stem, targets)
        return {t: predictions} if t else {}
    if not predictions.is_dir():
        raise InputError("predictions directory does not exist", predictions)
    candidates: dict = {}
    for entry in sorted(predictions.iterdir()):
        if not (entry.is_dir() or is_structure_file(entry)):
            continue
        name = entry.name if entry.is_dir() else structure_stem(entry)
        t = _target_of(name, targets)
        if t is None:
            continue
        path = _file_in_dir(entry) if entry.is_dir() else entry
        if path is not None:
            rank = 0 if name == t else (1 if structure_stem(path) == "ranked_0" or name == f"{t}_ranked_0" else 2)
            candidates.setdefault(t, []).append((rank, str(path), path))
    return {t: min(c)[2] for t, c in candidates.items()}


@dataclasses.dataclass
class Domain:
    target: str
    name: str
    residues: tuple  # native residue numbers

    @property
    def label(self) -> str:
        return self.name if self.name.startswith(self.target) else f"{self.target}-{self.name}"


_RANGE = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+))?\s*$")


def parse_ranges(text: str) -> tuple:
    """'1-70,90-148' -> residue numbers (ValueError on a malformed range)."""
    numbers = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = _RANGE.match(part)
        if not m:
            raise ValueError(f"bad residue range {part!r} (expected e.g. 1-70,90-148)")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        if hi < lo:
            raise ValueError(f"empty residue range {part!r}")
        numbers.extend(range(lo, hi + 1))
    if not numbers:
        raise ValueError("no residue ranges given")
    return tuple(numbers)


def read_domains(path) -> list:
    path = Path(path)
    if not path.is_file():
        raise InputError("no such domain file", path)
    domains = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields]
        if lineno == 1 and fields[0].lower() == "target":
            continue
        if len(fields) < 3:
            raise InputError("expected 3 columns: target, domain, residue ranges", path, lineno)
        try:
            residues = parse_ranges(",".join(fields[2:]))
        except ValueError as e:
            raise InputError(str(e), path, lineno) from e
        domains.append(Domain(fields[0], fields[1], residues))
    return domains
