"""Protein structures as atom37 arrays: PDB / mmCIF reading (Biopython) and writing.

Parsing policy (the same for PDB and mmCIF):
* only the first model is read; chains are kept in file order (``chain_index`` 0, 1, ... in order of first
  appearance, ``chain_ids`` holds their author chain ids); ``chain_id`` selects one chain;
* the 20 standard residues keep their type; modified amino acids that Biopython's extended three-letter table
  maps to a standard parent (MSE -> MET, SEP -> SER, ... the table AlphaFold's mmCIF pipeline uses) take the
  parent's type, and selenomethionine's SE is stored as MET's SD; any other residue in an ATOM record (UNK, ...)
  becomes UNK (aatype 20); waters and other HETATM groups are skipped;
* only heavy atoms named as in ``residue_constants.atom_types`` are kept (hydrogens and other names are dropped);
  residues with none of them are skipped; alternate locations: Biopython's choice (highest occupancy);
* insertion codes are not supported (as in AlphaFold): InputError naming the residue;
* malformed input raises ``InputError`` naming the file (``path``) and, when known, the line.

Writing: ``to_pdb`` (MODEL/ATOM/TER/ENDMDL/END, 80-column lines) and ``to_mmcif`` (a minimal mmCIF with entity,
chem_comp and atom_site categories that Biopython's MMCIFParser reads back). B-factors come from ``b_factors`` or
from a per-residue pLDDT vector.
"""
import collections
import dataclasses
import gzip
import io
import re
import warnings
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np
from Bio.Data.PDBData import protein_letters_3to1_extended
from Bio.PDB import MMCIFParser, PDBParser
from Bio.PDB.mmcifio import MMCIFIO

from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.common.errors import InputError

PDB_CHAIN_IDS = rc.PDB_CHAIN_IDS
PDB_MAX_CHAINS = rc.PDB_MAX_CHAINS


@dataclasses.dataclass(frozen=True)
class Protein:
    """One model of a protein (one or several chains) in the atom37 layout."""
    atom_positions: np.ndarray  # [N, 37, 3] Angstrom
    aatype: np.ndarray  # [N] restype_order index, 20 = UNK
    atom_mask: np.ndarray  # [N, 37] 1 where the atom is present
    residue_index: np.ndarray  # [N] residue numbers (author numbering when parsed from a file)
    chain_index: np.ndarray  # [N] 0-based chain number
    b_factors: np.ndarray  # [N, 37]
    chain_ids: Optional[Tuple[str, ...]] = None  # chain_ids[k] = name of chain k (None: PDB_CHAIN_IDS[k])

    def __post_init__(self):
        n = np.shape(self.aatype)[0] if np.ndim(self.aatype) else -1
        shapes = {"atom_positions": (n, rc.atom_type_num, 3), "atom_mask": (n, rc.atom_type_num),
                  "residue_index": (n,), "chain_index": (n,), "b_factors": (n, rc.atom_type_num)}
        for name, shape in shapes.items():
            if np.shape(getattr(self, name)) != shape:
                raise ValueError(f"Protein.{name} has shape {np.shape(getattr(self, name))}, expected {shape}")
        if len(np.unique(self.chain_index)) > PDB_MAX_CHAINS:
            raise ValueError(f"a Protein can hold at most {PDB_MAX_CHAINS} chains (PDB format limit)")
        if n and (np.min(self.aatype) < 0 or np.max(self.aatype) > rc.unk_restype_index):
            raise ValueError("Protein.aatype must be in 0..20")

    @property
    def num_res(self) -> int:
        return int(self.aatype.shape[0])

    def chain_name(self, k: int) -> str:
        """Name of chain number ``k``."""
        if self.chain_ids is not None and k < len(self.chain_ids):
            return self.chain_ids[k]
        return PDB_CHAIN_IDS[k % PDB_MAX_CHAINS]

    def sequence(self) -> str:
        """One-letter sequence of all residues (X for UNK)."""
        return "".join(rc.restypes_with_x[a] for a in self.aatype)

    def select(self, index) -> "Protein":
        """The residues at ``index`` (boolean mask or integer positions)."""
        return dataclasses.replace(self, atom_positions=self.atom_positions[index], aatype=self.aatype[index],
                                   atom_mask=self.atom_mask[index], residue_index=self.residue_index[index],
                                   chain_index=self.chain_index[index], b_factors=self.b_factors[index])


# ----------------------------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------------------------
def _residue_type(resname: str, hetflag: str) -> Optional[int]:
    """aatype for a residue name, or None when the residue is not part of the protein (water, ligand)."""
    if resname in rc.restype_3to1:
        return rc.restype_order[rc.restype_3to1[resname]]
    if hetflag == "W":
        return None
    parent = protein_letters_3to1_extended.get(resname)
    if parent in rc.restype_order:
        return rc.restype_order[parent]
    return rc.unk_restype_index if hetflag == " " else None


def _atom_slot(resname: str, atom_name: str) -> Optional[int]:
    if resname == "MSE" and atom_name == "SE":
        atom_name = "SD"
    return rc.atom_order.get(atom_name)


def from_bio_structure(structure, chain_id: Optional[str] = None, path=None) -> Protein:
    """Protein of the first model of a Biopython structure (see the module docstring for the policy)."""
    model = next(iter(structure), None)
    if model is None:
        raise InputError("no atoms found (empty structure)", path=path)
    chains_seen = [chain.id for chain in model]
    if chain_id is not None and chain_id not in chains_seen:
        raise InputError(f"no chain {chain_id!r} (chains: {', '.join(chains_seen) or 'none'})", path=path)
    rows = collections.defaultdict(list)
    chain_names = []
    for chain in model:
        if chain_id is not None and chain.id != chain_id:
            continue
        for res in chain:
            hetflag, resseq, icode = res.id
            aatype = _residue_type(res.get_resname().strip(), hetflag[:1] if hetflag != " " else " ")
            if aatype is None:
                continue
            if icode.strip():
                raise InputError(f"insertion code {icode!r} at chain {chain.id} residue {resseq} is not supported",
                                 path=path)
            pos = np.zeros((rc.atom_type_num, 3), np.float32)
            mask = np.zeros(rc.atom_type_num, np.float32)
            bfac = np.zeros(rc.atom_type_num, np.float32)
            for atom in res:
                slot = _atom_slot(res.get_resname().strip(), atom.get_name().strip())
                if slot is not None:
                    pos[slot], mask[slot], bfac[slot] = atom.get_coord(), 1.0, atom.get_bfactor()
            if mask.sum() == 0:
                continue
            if chain.id not in chain_names:
                chain_names.append(chain.id)
            for key, value in (("pos", pos), ("mask", mask), ("bfac", bfac), ("aatype", aatype),
                               ("resseq", resseq), ("chain", chain_names.index(chain.id))):
                rows[key].append(value)
    if not rows:
        raise InputError("no protein residues found" + (f" in chain {chain_id}" if chain_id else ""), path=path)
    if len(chain_names) > PDB_MAX_CHAINS:
        raise InputError(f"{len(chain_names)} chains: at most {PDB_MAX_CHAINS} are supported", path=path)
    return Protein(atom_positions=np.stack(rows["pos"]), aatype=np.asarray(rows["aatype"], np.int32),
                   atom_mask=np.stack(rows["mask"]), residue_index=np.asarray(rows["resseq"], np.int32),
                   chain_index=np.asarray(rows["chain"], np.int32), b_factors=np.stack(rows["bfac"]),
                   chain_ids=tuple(chain_names))


def _parse(parser, text: str, chain_id, path, kind: str) -> Protein:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = parser.get_structure("none", io.StringIO(text))
    except InputError:
        raise
    except Exception as e:  # Biopython raises many types on malformed input
        message = str(e).splitlines()[0] if str(e) else type(e).__name__
        found = re.search(r"line (\d+)", message)
        raise InputError(f"malformed {kind}: {message}", path=path,
                         line=int(found.group(1)) if found else None) from None
    return from_bio_structure(structure, chain_id, path=path)


def _check_pdb_lines(text: str, path) -> None:
    """Coordinate records need three numbers in columns 31-54, and numeric occupancy / B-factor columns when those
    are present (Biopython would silently substitute defaults)."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.startswith(("ATOM  ", "HETATM")):
            continue
        for field, (lo, hi) in (("x", (30, 38)), ("y", (38, 46)), ("z", (46, 54)),
                                ("occupancy", (54, 60)), ("B-factor", (60, 66))):
            value = line[lo:hi].strip()
            if not value and field in ("occupancy", "B-factor"):
                continue
            try:
                float(value)
            except ValueError:
                raise InputError(f"malformed PDB: bad or missing {field} in {line[:6].strip()} record "
                                 f"(columns {lo + 1}-{hi})", path=path, line=number) from None


def from_pdb_string(pdb_str: str, chain_id: Optional[str] = None, path=None) -> Protein:
    """Protein from PDB text (``path`` only names the source in error messages)."""
    _check_pdb_lines(pdb_str, path)
    return _parse(PDBParser(QUIET=True), pdb_str, chain_id, path, "PDB")


def from_mmcif_string(mmcif_str: str, chain_id: Optional[str] = None, path=None) -> Protein:
    """Protein from mmCIF text; chains are the author chain ids (auth_asym_id)."""
    if not mmcif_str.lstrip().startswith("data_"):
        raise InputError("malformed mmCIF: it must start with a data_ block", path=path)
    return _parse(MMCIFParser(QUIET=True), mmcif_str, chain_id, path, "mmCIF")


def from_file(path, chain_id: Optional[str] = None) -> Protein:
    """Read a .pdb/.ent or .cif/.mmcif file (optionally .gz) by its suffix."""
    path = Path(path)
    name = path.name.lower()
    opener = gzip.open if name.endswith(".gz") else open
    try:
        with opener(path, "rt") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise InputError(f"cannot read structure file ({getattr(e, 'strerror', None) or type(e).__name__})",
                         path=path) from None
    stem = name[:-3] if name.endswith(".gz") else name
    if stem.endswith((".cif", ".mmcif")):
        return from_mmcif_string(text, chain_id, path=path)
    return from_pdb_string(text, chain_id, path=path)


# ----------------------------------------------------------------------------------------------------------------
# Building
# ----------------------------------------------------------------------------------------------------------------
def from_prediction(aatype, final_atom_positions, final_atom_mask, residue_index=None, plddt=None,
                    chain_index=None, chain_ids: Optional[Sequence[str]] = None) -> Protein:
    """Protein of a model prediction. ``residue_index`` is the model feature (0-based; stored +1, as AlphaFold),
    default 0..N-1; ``plddt`` [N] becomes every atom's B-factor."""
    aatype = np.minimum(np.asarray(aatype, np.int32), rc.unk_restype_index)
    n = aatype.shape[0]
    residue_index = np.arange(n) if residue_index is None else np.asarray(residue_index)
    mask = np.asarray(final_atom_mask, np.float32)
    b = np.zeros_like(mask) if plddt is None else np.asarray(plddt, np.float32)[:, None] * mask
    return Protein(atom_positions=np.asarray(final_atom_positions, np.float32), aatype=aatype, atom_mask=mask,
                   residue_index=(residue_index + 1).astype(np.int32),
                   chain_index=np.zeros(n, np.int32) if chain_index is None else np.asarray(chain_index, np.int32),
                   b_factors=b, chain_ids=None if chain_ids is None else tuple(chain_ids))


def ideal_atom_mask(prot: Protein) -> np.ndarray:
    """[N, 37] the heavy atoms each residue type should have (no OXT; none for UNK)."""
    return rc.STANDARD_ATOM_MASK[prot.aatype]


def ca_only(prot: Protein) -> Protein:
    """The same protein with only its CA atoms."""
    keep = np.zeros(rc.atom_type_num, np.float32)
    keep[rc.atom_order["CA"]] = 1.0
    return dataclasses.replace(prot, atom_mask=prot.atom_mask * keep,
                               atom_positions=prot.atom_positions * keep[:, None], b_factors=prot.b_factors * keep)


def _b_factors(prot: Protein, plddt) -> np.ndarray:
    if plddt is None:
        return np.asarray(prot.b_factors, np.float32)
    plddt = np.asarray(plddt, np.float32)
    if plddt.shape != (prot.num_res,):
        raise ValueError(f"plddt must have shape ({prot.num_res},), got {plddt.shape}")
    return np.broadcast_to(plddt[:, None], (prot.num_res, rc.atom_type_num))


def _chain_letters(prot: Protein) -> dict:
    """chain_index -> one-character PDB chain id (the stored names when they fit, else A, B, ...)."""
    present = [int(k) for k in dict.fromkeys(prot.chain_index.tolist())]
    names = [prot.chain_name(k) for k in present]
    if not all(len(x) == 1 and x in PDB_CHAIN_IDS for x in names) or len(set(names)) != len(names):
        names = [PDB_CHAIN_IDS[k] for k in present]
    return dict(zip(present, names))


# ----------------------------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------------------------
def to_pdb(prot: Protein, plddt=None) -> str:
    """PDB text of ``prot``: one MODEL, ATOM records in atom37 order per residue, TER after each chain, END.
    The B-factor column holds ``plddt[i]`` for every atom of residue i when given, else ``prot.b_factors``."""
    if prot.num_res == 0:
        raise ValueError("cannot write an empty protein")
    b_factors = _b_factors(prot, plddt)
    letters = _chain_letters(prot)
    if np.abs(prot.atom_positions[prot.atom_mask > 0.5]).max(initial=0.0) >= 1000.0:
        raise ValueError("coordinates beyond +-999.999 A do not fit the PDB format")
    if prot.residue_index.min() < -999 or prot.residue_index.max() > 9999:
        raise ValueError("residue numbers must be in -999..9999 for the PDB format")
    lines = ["MODEL     1"]
    serial = 1

    def ter(i):
        return f"TER   {serial:>5}      {rc.resnames[prot.aatype[i]]:>3} {letters[int(prot.chain_index[i])]:>1}" \
               f"{int(prot.residue_index[i]):>4}"

    for i in range(prot.num_res):
        if i > 0 and prot.chain_index[i] != prot.chain_index[i - 1]:
            lines.append(ter(i - 1))
            serial += 1
        resname, chain = rc.resnames[prot.aatype[i]], letters[int(prot.chain_index[i])]
        for slot in np.flatnonzero(prot.atom_mask[i] > 0.5):
            name = rc.atom_types[slot]
            x, y, z = prot.atom_positions[i, slot]
            lines.append(f"ATOM  {serial:>5} {name if len(name) == 4 else ' ' + name:<4} {resname:>3} {chain:>1}"
                         f"{int(prot.residue_index[i]):>4}    {x:>8.3f}{y:>8.3f}{z:>8.3f}{1.0:>6.2f}"
                         f"{float(b_factors[i, slot]):>6.2f}          {name[0]:>2}  ")
            serial += 1
    lines.append(ter(prot.num_res - 1))
    lines += ["ENDMDL", "END"]
    return "\n".join(line.ljust(80) for line in lines) + "\n"


def _mmcif_chain_id(k: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA, 27 -> BA, ... (mmCIF label_asym_id style)."""
    out, k = "", k + 1
    while k > 0:
        k -= 1
        out += chr(ord("A") + k % 26)
        k //= 26
    return out


_CHEM_COMP_NAMES = {"ALA": "ALANINE", "ARG": "ARGININE", "ASN": "ASPARAGINE", "ASP": "ASPARTIC ACID",
                    "CYS": "CYSTEINE", "GLN": "GLUTAMINE", "GLU": "GLUTAMIC ACID", "GLY": "GLYCINE",
                    "HIS": "HISTIDINE", "ILE": "ISOLEUCINE", "LEU": "LEUCINE", "LYS": "LYSINE",
                    "MET": "METHIONINE", "PHE": "PHENYLALANINE", "PRO": "PROLINE", "SER": "SERINE",
                    "THR": "THREONINE", "TRP": "TRYPTOPHAN", "TYR": "TYROSINE", "VAL": "VALINE", "UNK": "UNKNOWN"}


def to_mmcif(prot: Protein, file_id: str = "model", plddt=None) -> str:
    """mmCIF text of ``prot`` (one entity per chain; residue gaps filled with UNK in _entity_poly_seq so that
    label_seq_id numbering is contiguous). B_iso_or_equiv = per-residue ``plddt`` when given, else b_factors;
    auth_asym_id / auth_seq_id keep the chain names and residue numbers."""
    if prot.num_res == 0:
        raise ValueError("cannot write an empty protein")
    b_factors = _b_factors(prot, plddt)
    block = re.sub(r"[^A-Za-z0-9_.-]", "_", file_id) or "model"
    cif = collections.defaultdict(list)
    cif["data_"] = block
    cif["_entry.id"] = block
    chains = [int(k) for k in dict.fromkeys(prot.chain_index.tolist())]
    start = {}
    for entity, k in enumerate(chains, start=1):
        label = _mmcif_chain_id(entity - 1)
        sel = prot.chain_index == k
        numbers, types = prot.residue_index[sel], prot.aatype[sel]
        start[k] = min(1, int(numbers.min()))
        seq = dict(zip(numbers.tolist(), types.tolist()))
        for key, value in (("_entity.id", str(entity)), ("_entity.type", rc.POLYMER_CHAIN),
                           ("_entity_poly.entity_id", str(entity)), ("_entity_poly.type", rc.PROTEIN_CHAIN),
                           ("_entity_poly.pdbx_strand_id", prot.chain_name(k)),
                           ("_struct_asym.id", label), ("_struct_asym.entity_id", str(entity))):
            cif[key].append(value)
        for num in range(start[k], int(numbers.max()) + 1):
            cif["_entity_poly_seq.entity_id"].append(str(entity))
            cif["_entity_poly_seq.num"].append(str(num - start[k] + 1))
            cif["_entity_poly_seq.mon_id"].append(rc.resnames[seq.get(num, rc.unk_restype_index)])
    for resname, name in _CHEM_COMP_NAMES.items():
        cif["_chem_comp.id"].append(resname)
        cif["_chem_comp.type"].append("peptide linking" if resname == "GLY" else "L-peptide linking")
        cif["_chem_comp.name"].append(name)
    serial = 1
    for i in range(prot.num_res):
        k = int(prot.chain_index[i])
        entity = chains.index(k) + 1
        for slot in np.flatnonzero(prot.atom_mask[i] > 0.5):
            name = rc.atom_types[slot]
            values = {"group_PDB": "ATOM", "id": str(serial), "type_symbol": rc.atom_id_to_type(name),
                      "label_atom_id": name, "label_alt_id": ".", "label_comp_id": rc.resnames[prot.aatype[i]],
                      "label_asym_id": _mmcif_chain_id(entity - 1), "label_entity_id": str(entity),
                      "label_seq_id": str(int(prot.residue_index[i]) - start[k] + 1), "pdbx_PDB_ins_code": "?",
                      "Cartn_x": f"{prot.atom_positions[i, slot, 0]:.3f}",
                      "Cartn_y": f"{prot.atom_positions[i, slot, 1]:.3f}",
                      "Cartn_z": f"{prot.atom_positions[i, slot, 2]:.3f}", "occupancy": "1.00",
                      "B_iso_or_equiv": f"{float(b_factors[i, slot]):.2f}",
                      "auth_seq_id": str(int(prot.residue_index[i])), "auth_asym_id": prot.chain_name(k),
                      "pdbx_PDB_model_num": "1"}
            for key, value in values.items():
                cif["_atom_site." + key].append(value)
            serial += 1
    writer = MMCIFIO()
    writer.set_dict(dict(cif))
    with io.StringIO() as handle:
        writer.save(handle)
        return handle.getvalue()
