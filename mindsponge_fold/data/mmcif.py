"""mmCIF parsing (Biopython) into what the data pipeline needs: per protein chain its SEQRES sequence, atom37
coordinates/masks of the first model, and the entry header (resolution, release date, structure method).

Conventions follow AlphaFold's mmcif_parsing/templates modules:
* chains are keyed by their AUTHOR chain id (``auth_asym_id``); ``label_to_author`` maps the mmCIF label ids.
  ``resolve_chain`` accepts either.
* the sequence comes from ``_entity_poly_seq`` (SEQRES, including unresolved residues); a residue is one letter
  when Biopython's ``PDBData.protein_letters_3to1`` knows it (the 20 standard amino acids), else 'X' (so MSE,
  selenomethionine, is 'X' in the sequence while its SE atom fills the SD slot of the coordinates).
* only the first model is read (NMR ensembles); residues missing from the coordinates have an all-zero mask.
* arginine NH1/NH2 swapped relative to CD are put back; CA-CA jumps above ``max_ca_ca_distance`` are an error.
* header resolution: the last of _refine.ls_d_res_high, _em_3d_reconstruction.resolution,
  _reflns.d_resolution_high that parses as a number (0.0 when none: NMR); release date = oldest revision date.
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import io
from pathlib import Path

import numpy as np

from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data.parsers import read_text

_REQUIRED = ("_atom_site.label_comp_id", "_atom_site.auth_asym_id", "_atom_site.label_asym_id",
             "_atom_site.auth_seq_id", "_atom_site.label_seq_id", "_atom_site.pdbx_PDB_ins_code",
             "_atom_site.group_PDB", "_atom_site.pdbx_PDB_model_num",
             "_entity_poly_seq.entity_id", "_entity_poly_seq.mon_id", "_entity_poly_seq.num",
             "_chem_comp.id", "_chem_comp.type", "_struct_asym.id", "_struct_asym.entity_id")


@dataclasses.dataclass(frozen=True)
class ResidueAtPosition:
    """Where SEQRES residue i of a chain sits in the Biopython structure (``position`` None when unresolved)."""
    position: tuple | None      # (author chain id, author residue number, insertion code)
    name: str
    is_missing: bool
    hetflag: str


@dataclasses.dataclass(frozen=True)
class MmcifObject:
    file_id: str
    path: str | None
    header: dict                # structure_method, release_date, resolution
    structure: object           # Biopython model 1
    chain_to_seqres: dict       # author chain id -> one-letter SEQRES
    seqres_to_structure: dict   # author chain id -> {seqres index: ResidueAtPosition}
    label_to_author: dict       # label_asym_id -> auth_asym_id (protein chains)
    chain_to_entity: dict = dataclasses.field(default_factory=dict)   # author chain id -> _entity.id (protein)


@dataclasses.dataclass(frozen=True)
class ProteinChain:
    """One protein chain of an mmCIF entry, ready for features: atom37 arrays on the SEQRES residues."""
    file_id: str
    author_chain_id: str
    label_chain_ids: tuple
    sequence: str
    atom_positions: np.ndarray  # float [L, 37, 3] (A)
    atom_mask: np.ndarray       # float [L, 37]
    resolution: float
    release_date: str | None
    structure_method: str


def _loop(prefix: str, info: dict) -> list:
    cols = [k for k in info if k.startswith(prefix)]
    return [dict(zip(cols, row)) for row in zip(*(info[c] for c in cols))]


def _check_loops(info: dict, text: str, source) -> None:
    """Every column of a loop must have as many values: otherwise the file ends (or breaks) mid-row."""
    lengths = collections.defaultdict(set)
    for key, value in info.items():
        if key.startswith("_") and "." in key:
            lengths[key.split(".", 1)[0]].add(len(value))
    for category, sizes in lengths.items():
        if len(sizes) > 1:
            raise InputError(f"truncated or malformed mmCIF: the {category} loop has columns of {min(sizes)} and "
                             f"{max(sizes)} values (the file ends or breaks inside a row)", source,
                             max(1, text.count("\n")))
    missing = [k for k in _REQUIRED if k not in info]
    if missing:
        cats = sorted({k.split(".")[0] for k in missing})
        raise InputError(f"truncated or incomplete mmCIF: no {', '.join(cats)} records ({len(missing)} required "
                         f"fields missing, e.g. {missing[0]})", source, max(1, text.count("\n")))


def _header(info: dict) -> dict:
    methods = info.get("_exptl.method", [])
    header = {"structure_method": ",".join(m.lower() for m in methods)}
    dates = info.get("_pdbx_audit_revision_history.revision_date")
    header["release_date"] = min(dates) if dates else None
    header["resolution"] = 0.0
    for key in ("_refine.ls_d_res_high", "_em_3d_reconstruction.resolution", "_reflns.d_resolution_high"):
        if key in info:
            try:
                header["resolution"] = float(info[key][0])
            except ValueError:
                pass
    return header


def _protein_chains(info: dict) -> dict:
    """label_asym_id -> [(monomer id, num)] for polymers with at least one peptide-like monomer."""
    polymers = collections.defaultdict(list)
    for row in _loop("_entity_poly_seq.", info):
        polymers[row["_entity_poly_seq.entity_id"]].append((row["_entity_poly_seq.mon_id"],
                                                            int(row["_entity_poly_seq.num"])))
    comp_type = {row["_chem_comp.id"]: row["_chem_comp.type"].lower() for row in _loop("_chem_comp.", info)}
    entity_chains = collections.defaultdict(list)
    for row in _loop("_struct_asym.", info):
        entity_chains[row["_struct_asym.entity_id"]].append(row["_struct_asym.id"])
    chains = {}
    for entity, monomers in polymers.items():
        if any("peptide" in comp_type.get(mon, "") for mon, _ in monomers):
            for chain in entity_chains[entity]:
                chains[chain] = monomers
    return chains


def _one_letter(three: str) -> str:
    from Bio.Data import PDBData
    code = PDBData.protein_letters_3to1.get(three, "X")
    return code if len(code) == 1 else "X"


def parse_mmcif_text(text: str, file_id: str, source=None) -> MmcifObject:
    """Parse mmCIF text. Raises InputError (naming ``source``) for truncated/incomplete files or no protein."""
    from Bio.PDB import MMCIFParser
    parser = MMCIFParser(QUIET=True)
    try:
        structure = parser.get_structure(file_id, io.StringIO(text))
        error = None
    except Exception as e:  # noqa: BLE001 - Biopython raises many types on bad files; diagnosed below
        structure, error = None, e
    info = getattr(parser, "_mmcif_dict", None)
    if info is None:
        raise InputError(f"not a readable mmCIF file ({type(error).__name__}: {error})", source)
    info = {k: (v if isinstance(v, list) else [v]) for k, v in info.items()}
    _check_loops(info, text, source)
    if structure is None:
        raise InputError(f"Biopython could not build the structure ({type(error).__name__}: {error})", source)
    try:
        model = next(structure.get_models())
    except StopIteration:
        raise InputError("mmCIF has no models (no coordinates)", source) from None
    chains = _protein_chains(info)
    if not chains:
        raise InputError("no protein chains in this mmCIF file", source)
    seq_start = {c: min(num for _, num in mons) for c, mons in chains.items()}

    label_to_author, mapping = {}, collections.defaultdict(dict)
    sites = zip(info["_atom_site.label_comp_id"], info["_atom_site.auth_asym_id"], info["_atom_site.label_asym_id"],
                info["_atom_site.auth_seq_id"], info["_atom_site.label_seq_id"], info["_atom_site.pdbx_PDB_ins_code"],
                info["_atom_site.group_PDB"], info["_atom_site.pdbx_PDB_model_num"])
    first_model = info["_atom_site.pdbx_PDB_model_num"][0]
    for comp, auth_chain, label_chain, auth_num, label_num, icode, group, model_num in sites:
        if model_num != first_model:
            continue
        label_to_author[label_chain] = auth_chain
        if label_chain not in chains:
            continue
        hetflag = " "
        if group == "HETATM":
            hetflag = "W" if comp in ("HOH", "WAT") else "H_" + comp
        icode = " " if icode in (".", "?") else icode
        idx = int(label_num) - seq_start[label_chain]
        mapping[auth_chain][idx] = ResidueAtPosition((auth_chain, int(auth_num), icode), comp, False, hetflag)

    chain_to_seqres = {}
    for label_chain, monomers in chains.items():
        if label_chain not in label_to_author:
            continue   # a protein entity without coordinates in model 1
        author = label_to_author[label_chain]
        current = mapping[author]
        for idx, (mon, _) in enumerate(monomers):
            current.setdefault(idx, ResidueAtPosition(None, mon, True, " "))
        chain_to_seqres[author] = "".join(_one_letter(mon) for mon, _ in monomers)
    if not chain_to_seqres:
        raise InputError("no protein chain of this mmCIF file has coordinates in its first model", source)
    label_entity = {row["_struct_asym.id"]: row["_struct_asym.entity_id"] for row in _loop("_struct_asym.", info)}
    return MmcifObject(file_id=file_id, path=None if source is None else str(source), header=_header(info),
                       structure=model, chain_to_seqres=chain_to_seqres,
                       seqres_to_structure={a: dict(mapping[a]) for a in chain_to_seqres},
                       label_to_author={lab: aut for lab, aut in label_to_author.items() if lab in chains},
                       chain_to_entity={label_to_author[lab]: label_entity[lab] for lab in chains
                                        if lab in label_to_author and lab in label_entity})


@functools.lru_cache(maxsize=8)
def _parse_cached(path: str, mtime: float) -> MmcifObject:
    return parse_mmcif_text(read_text(path), Path(path).stem.lower(), path)


def parse_mmcif(path) -> MmcifObject:
    """Parse an mmCIF file (file_id = lower-case file stem); cached per path and modification time."""
    path = Path(path)
    if not path.exists():
        raise InputError("mmCIF file not found", path)
    return _parse_cached(str(path), path.stat().st_mtime)


def resolve_chain(mmcif: MmcifObject, chain: str) -> str:
    """The author chain id for ``chain``, given as an author id or as an mmCIF label id."""
    if chain in mmcif.chain_to_seqres:
        return chain
    if chain in mmcif.label_to_author:
        return mmcif.label_to_author[chain]
    raise InputError(f"no protein chain '{chain}' (author chains: {', '.join(sorted(mmcif.chain_to_seqres))}; "
                     f"label chains: {', '.join(sorted(mmcif.label_to_author))})", mmcif.path)


def get_atom_positions(mmcif: MmcifObject, chain: str, max_ca_ca_distance: float = 150.0):
    """atom37 (positions [L, 37, 3] float64, mask [L, 37] int64) of the chain's SEQRES residues (model 1)."""
    from mindsponge_fold.common import residue_constants as rc
    auth = resolve_chain(mmcif, chain)
    num_res = len(mmcif.chain_to_seqres[auth])
    chains = [c for c in mmcif.structure.get_chains() if c.id == auth]
    if len(chains) != 1:
        raise InputError(f"expected exactly one chain '{auth}' in the structure, found {len(chains)}", mmcif.path)
    bio_chain = chains[0]
    positions = np.zeros([num_res, rc.atom_type_num, 3])
    masks = np.zeros([num_res, rc.atom_type_num], dtype=np.int64)
    sd, cd, nh1, nh2 = (rc.atom_order[a] for a in ("SD", "CD", "NH1", "NH2"))
    for i in range(num_res):
        where = mmcif.seqres_to_structure[auth][i]
        if where.is_missing:
            continue
        pos = np.zeros([rc.atom_type_num, 3], dtype=np.float32)
        mask = np.zeros([rc.atom_type_num], dtype=np.float32)
        try:
            res = bio_chain[(where.hetflag, where.position[1], where.position[2])]
        except KeyError:
            raise InputError(f"chain {auth}: residue {where.name} {where.position[1]}{where.position[2].strip()} of "
                             "the atom records is missing from the parsed structure", mmcif.path) from None
        for atom in res.get_atoms():
            name = atom.get_name()
            if name in rc.atom_order:
                slot = rc.atom_order[name]
            elif name.upper() == "SE" and res.get_resname() == "MSE":
                slot = sd   # selenomethionine: Se takes the S(delta) slot
            else:
                continue
            pos[slot] = atom.get_coord()
            mask[slot] = 1.0
        if (res.get_resname() == "ARG" and mask[cd] and mask[nh1] and mask[nh2]
                and np.linalg.norm(pos[nh1] - pos[cd]) > np.linalg.norm(pos[nh2] - pos[cd])):
            pos[[nh1, nh2]] = pos[[nh2, nh1]]
        positions[i] = pos
        masks[i] = mask
    _check_ca_distances(positions, masks, rc.atom_order["CA"], max_ca_ca_distance, mmcif, auth)
    return positions, masks


def _check_ca_distances(positions, masks, ca, limit, mmcif, chain):
    prev = None
    for i in range(len(positions)):
        if not masks[i, ca]:
            prev = None
            continue
        if prev is not None:
            dist = float(np.linalg.norm(positions[i, ca] - positions[prev, ca]))
            if dist > limit:
                raise InputError(f"chain {chain}: CA-CA distance between residues {prev} and {i} is {dist:.1f} A "
                                 f"> {limit} A", mmcif.path)
        prev = i


def load_chain(path, chain: str) -> ProteinChain:
    """Parse ``path`` and return chain ``chain`` (author or label id) with atom37 coordinates."""
    mmcif = parse_mmcif(path)
    auth = resolve_chain(mmcif, chain)
    positions, masks = get_atom_positions(mmcif, auth)
    labels = tuple(sorted(lab for lab, aut in mmcif.label_to_author.items() if aut == auth))
    return ProteinChain(file_id=mmcif.file_id, author_chain_id=auth, label_chain_ids=labels,
                        sequence=mmcif.chain_to_seqres[auth], atom_positions=positions, atom_mask=masks,
                        resolution=float(mmcif.header["resolution"]), release_date=mmcif.header["release_date"],
                        structure_method=mmcif.header["structure_method"])
