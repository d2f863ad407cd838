"""Residue-level constants: amino-acid alphabets, atom37/atom14 layouts, rigid groups, stereochemistry.

Framework-free (numpy only). Attribute and function names follow AlphaFold's ``residue_constants`` so that code
written against the AlphaFold 2 supplement reads the same here. Numbers (idealised rigid-group atom positions,
Engh & Huber bond lengths and angles) are loaded from ``residue_geometry.json`` next to this module.

Conventions:
* residue types are indexed in ``restypes`` order (one-letter codes of the alphabetically sorted three-letter
  names), index 20 = unknown ``X``/``UNK``; per-restype tables have 21 rows (the UNK row is empty) unless noted;
* atom37 = every heavy-atom name of the 20 residues (``atom_types``), atom14 = per-residue compact layout
  (``restype_name_to_atom14_names``);
* 8 rigid groups per residue (Supplement Table 2): 0 backbone, 1 pre-omega, 2 phi, 3 psi, 4..7 chi1..chi4.
"""
import collections
import functools
import json
import os
import string
from typing import Dict, List, Mapping, Tuple

import numpy as np

_GEOMETRY_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "residue_geometry.json")


@functools.lru_cache(maxsize=None)
def _geometry() -> dict:
    with open(_GEOMETRY_PATH, "rt", encoding="utf-8") as handle:
        return json.load(handle)


# --------------------------------------------------------------------------------------------------------------
# Amino-acid alphabets
# --------------------------------------------------------------------------------------------------------------
restypes = list("ARNDCQEGHILKMFPSTWYV")
restype_order = {r: i for i, r in enumerate(restypes)}
restype_num = len(restypes)  # 20
unk_restype_index = restype_num  # index of X / UNK
restypes_with_x = restypes + ["X"]
restype_order_with_x = {r: i for i, r in enumerate(restypes_with_x)}
restypes_with_x_and_gap = restypes + ["X", "-"]

_THREE_LETTER = "ALA ARG ASN ASP CYS GLN GLU GLY HIS ILE LEU LYS MET PHE PRO SER THR TRP TYR VAL".split()
restype_1to3 = dict(zip(restypes, _THREE_LETTER))
restype_3to1 = {three: one for one, three in restype_1to3.items()}
unk_restype = "UNK"
resnames = [restype_1to3[r] for r in restypes] + [unk_restype]
resname_to_idx = {name: i for i, name in enumerate(resnames)}

PROTEIN_CHAIN = "polypeptide(L)"
POLYMER_CHAIN = "polymer"

# HHblits alphabet: 20 amino acids in one-letter alphabetical order, then X (20) and gap (21). Ambiguity codes
# are folded as HHblits does: B->D, Z->E, U->C, J and O -> X.
_HHBLITS_ORDER = "ACDEFGHIKLMNPQRSTVWYX-"
ID_TO_HHBLITS_AA = dict(enumerate(_HHBLITS_ORDER))
HHBLITS_AA_TO_ID = {aa: i for i, aa in ID_TO_HHBLITS_AA.items()}
HHBLITS_AA_TO_ID.update({"B": HHBLITS_AA_TO_ID["D"], "Z": HHBLITS_AA_TO_ID["E"], "U": HHBLITS_AA_TO_ID["C"],
                         "J": HHBLITS_AA_TO_ID["X"], "O": HHBLITS_AA_TO_ID["X"]})
HHBLITS_AA_TO_ID = dict(sorted(HHBLITS_AA_TO_ID.items(), key=lambda kv: (kv[0] == "-", kv[0])))
# HHblits id -> our id (restypes_with_x_and_gap order).
MAP_HHBLITS_AATYPE_TO_OUR_AATYPE = tuple(restypes_with_x_and_gap.index(ID_TO_HHBLITS_AA[i])
                                         for i in range(len(restypes_with_x_and_gap)))


def sequence_to_onehot(sequence: str, mapping: Mapping[str, int], map_unknown_to_x: bool = False) -> np.ndarray:
    """One-hot encode ``sequence`` with ``mapping`` (letter -> contiguous index 0..K-1): int32 [len, K].

    With ``map_unknown_to_x`` any upper-case letter missing from ``mapping`` becomes ``mapping['X']``; other
    characters raise ValueError. Without it, a letter missing from ``mapping`` raises ValueError.
    """
    num_classes = max(mapping.values()) + 1
    if sorted(set(mapping.values())) != list(range(num_classes)):
        raise ValueError(f"mapping values must be exactly 0..{num_classes - 1}, got {sorted(mapping.values())}")
    out = np.zeros((len(sequence), num_classes), dtype=np.int32)
    for pos, letter in enumerate(sequence):
        if letter in mapping:
            idx = mapping[letter]
        elif map_unknown_to_x and letter.isalpha() and letter.isupper():
            idx = mapping["X"]
        else:
            raise ValueError(f"invalid residue letter {letter!r} at position {pos} of the sequence")
        out[pos, idx] = 1
    return out


# --------------------------------------------------------------------------------------------------------------
# Atom layouts
# --------------------------------------------------------------------------------------------------------------
atom_types = ("N CA C CB O CG CG1 CG2 OG OG1 SG CD CD1 CD2 ND1 ND2 OD1 OD2 SD CE CE1 CE2 CE3 NE NE1 NE2 OE1 OE2 "
              "CH2 NH1 NH2 OH CZ CZ2 CZ3 NZ OXT").split()
atom_order = {name: i for i, name in enumerate(atom_types)}
atom_type_num = len(atom_types)  # 37

# atom14: N CA C O first, then the side chain; '' pads to 14.
_ATOM14_SIDECHAINS = {
    "ALA": "CB", "ARG": "CB CG CD NE CZ NH1 NH2", "ASN": "CB CG OD1 ND2", "ASP": "CB CG OD1 OD2",
    "CYS": "CB SG", "GLN": "CB CG CD OE1 NE2", "GLU": "CB CG CD OE1 OE2", "GLY": "",
    "HIS": "CB CG ND1 CD2 CE1 NE2", "ILE": "CB CG1 CG2 CD1", "LEU": "CB CG CD1 CD2", "LYS": "CB CG CD CE NZ",
    "MET": "CB CG SD CE", "PHE": "CB CG CD1 CD2 CE1 CE2 CZ", "PRO": "CB CG CD", "SER": "CB OG",
    "THR": "CB OG1 CG2", "TRP": "CB CG CD1 CD2 NE1 CE2 CE3 CZ2 CZ3 CH2", "TYR": "CB CG CD1 CD2 CE1 CE2 CZ OH",
    "VAL": "CB CG1 CG2",
}
restype_name_to_atom14_names: Dict[str, List[str]] = {}
for _res, _side in _ATOM14_SIDECHAINS.items():
    _names = ["N", "CA", "C", "O"] + _side.split()
    restype_name_to_atom14_names[_res] = _names + [""] * (14 - len(_names))
restype_name_to_atom14_names[unk_restype] = [""] * 14

# Heavy atoms of each standard residue (no OXT, no hydrogens).
residue_atoms = {res: [n for n in names if n] for res, names in restype_name_to_atom14_names.items()
                 if res != unk_restype}

# --------------------------------------------------------------------------------------------------------------
# Torsions and rigid groups
# --------------------------------------------------------------------------------------------------------------
# Four atoms of each chi angle (chi1 first). ARG chi5 is ignored (always ~0).
_CHI_ATOMS = {
    "ALA": "", "ARG": "N CA CB CG|CA CB CG CD|CB CG CD NE|CG CD NE CZ", "ASN": "N CA CB CG|CA CB CG OD1",
    "ASP": "N CA CB CG|CA CB CG OD1", "CYS": "N CA CB SG", "GLN": "N CA CB CG|CA CB CG CD|CB CG CD OE1",
    "GLU": "N CA CB CG|CA CB CG CD|CB CG CD OE1", "GLY": "", "HIS": "N CA CB CG|CA CB CG ND1",
    "ILE": "N CA CB CG1|CA CB CG1 CD1", "LEU": "N CA CB CG|CA CB CG CD1",
    "LYS": "N CA CB CG|CA CB CG CD|CB CG CD CE|CG CD CE NZ", "MET": "N CA CB CG|CA CB CG SD|CB CG SD CE",
    "PHE": "N CA CB CG|CA CB CG CD1", "PRO": "N CA CB CG|CA CB CG CD", "SER": "N CA CB OG", "THR": "N CA CB OG1",
    "TRP": "N CA CB CG|CA CB CG CD1", "TYR": "N CA CB CG|CA CB CG CD1", "VAL": "N CA CB CG1",
}
chi_angles_atoms = {res: [chi.split() for chi in spec.split("|")] if spec else [] for res, spec in _CHI_ATOMS.items()}
# [20, 4]: which chis exist per restype.
chi_angles_mask = [[1.0 if k < len(chi_angles_atoms[restype_1to3[r]]) else 0.0 for k in range(4)]
                   for r in restypes]
# [21, 4]: chis whose value is defined only modulo pi (symmetric terminal groups).
_PI_PERIODIC_CHI = {"ASP": 1, "GLU": 2, "PHE": 1, "TYR": 1}
chi_pi_periodic = [[1.0 if _PI_PERIODIC_CHI.get(res) == k else 0.0 for k in range(4)] for res in resnames]

# [20, 4, 4] atom37 indices of the chi atoms (0 for absent chis), and the same with an UNK row [21, 4, 4].
chi_angles_atom_indices = np.array([[[atom_order[a] for a in chi] for chi in chi_angles_atoms[restype_1to3[r]]]
                                    + [[0, 0, 0, 0]] * (4 - len(chi_angles_atoms[restype_1to3[r]]))
                                    for r in restypes], dtype=np.int32)
chi_atom_indices_with_unk = np.concatenate([chi_angles_atom_indices, np.zeros((1, 4, 4), np.int32)], axis=0)

# (resname, atom) -> [(chi index, position of the atom within that chi's 4 atoms), ...]
chi_groups_for_atom: Dict[Tuple[str, str], List[Tuple[int, int]]] = collections.defaultdict(list)
for _res, _chis in chi_angles_atoms.items():
    for _k, _chi in enumerate(_chis):
        for _pos, _atom in enumerate(_chi):
            chi_groups_for_atom[(_res, _atom)].append((_k, _pos))
chi_groups_for_atom = dict(chi_groups_for_atom)


# resname -> [[atom name, rigid group index, (x, y, z) in that group's frame], ...]. The frame of group g has its
# origin at the axis-end atom, x along the rotation axis, and the atom defining the torsion in the xy plane (y>0).
rigid_group_atom_positions = {res: [[name, int(group), tuple(float(c) for c in pos)] for name, group, pos in rows]
                              for res, rows in _geometry()["rigid_group_atom_positions"].items()}

# Atom-name swaps under the 180-degree symmetry of a terminal group (Supplement Table 3).
residue_atom_renaming_swaps = {
    "ASP": {"OD1": "OD2"},
    "GLU": {"OE1": "OE2"},
    "PHE": {"CD1": "CD2", "CE1": "CE2"},
    "TYR": {"CD1": "CD2", "CE1": "CE2"},
}

# Van der Waals radii (Angstrom) by element.
van_der_waals_radius = {"C": 1.7, "N": 1.55, "O": 1.52, "S": 1.8}


def atom_id_to_type(atom_id: str) -> str:
    """Element letter of a standard protein atom name (C, N, O, S or H)."""
    if atom_id and atom_id[0] in "CNOSH":
        return atom_id[0]
    raise ValueError(f"atom name {atom_id!r} not recognised")


# --------------------------------------------------------------------------------------------------------------
# Stereochemistry
# --------------------------------------------------------------------------------------------------------------
ca_ca = 3.80209737096  # CA(i)-CA(i+1) distance for a trans peptide (omega = 180 deg), Angstrom

# Between-residue C(i)-N(i+1) peptide bond; index 0: general, index 1: next residue is proline.
between_res_bond_length_c_n = [1.329, 1.341]
between_res_bond_length_stddev_c_n = [0.014, 0.016]
# Cosines of the between-residue angles [mean cos, stddev] (CA-C-N 116.568 +- 1.995 deg, C-N-CA 121.352 +- 2.315).
between_res_cos_angles_c_n_ca = [-0.5203, 0.0353]
between_res_cos_angles_ca_c_n = [-0.4473, 0.0311]

Bond = collections.namedtuple("Bond", ["atom1_name", "atom2_name", "length", "stddev"])
BondAngle = collections.namedtuple("BondAngle", ["atom1_name", "atom2_name", "atom3name", "angle_rad", "stddev"])


def _virtual_bond(bond_ab: Bond, bond_bc: Bond, angle: BondAngle) -> Bond:
    """Distance atom1-atom3 across ``angle`` (law of cosines) with first-order propagated uncertainty."""
    a, b, gamma = bond_ab.length, bond_bc.length, angle.angle_rad
    length = np.sqrt(a * a + b * b - 2.0 * a * b * np.cos(gamma))
    d_gamma = a * b * np.sin(gamma) / length
    d_a = (a - b * np.cos(gamma)) / length
    d_b = (b - a * np.cos(gamma)) / length
    stddev = np.sqrt((d_gamma * angle.stddev) ** 2 + (d_a * bond_ab.stddev) ** 2 + (d_b * bond_bc.stddev) ** 2)
    return Bond(angle.atom1_name, angle.atom3name, length, stddev)


@functools.lru_cache(maxsize=None)
def load_stereo_chemical_props() -> Tuple[Mapping[str, List[Bond]], Mapping[str, List[Bond]],
                                          Mapping[str, List[BondAngle]]]:
    """Literature bond lengths and angles per residue.

    Returns (residue_bonds, residue_virtual_bonds, residue_bond_angles): resname -> list of Bond / Bond /
    BondAngle (angles in radians). Virtual bonds are the atom1-atom3 distances implied by each bond angle.
    'UNK' maps to empty lists.
    """
    geo = _geometry()
    residue_bonds = {res: [Bond(*name.split("-"), float(mean), float(sd)) for name, mean, sd in rows]
                     for res, rows in geo["bond_lengths_angstrom"].items()}
    residue_bond_angles = {res: [BondAngle(*name.split("-"), np.deg2rad(float(mean)), np.deg2rad(float(sd)))
                                 for name, mean, sd in rows]
                           for res, rows in geo["bond_angles_degree"].items()}
    residue_bonds[unk_restype] = []
    residue_bond_angles[unk_restype] = []
    residue_virtual_bonds = {}
    for res, angles in residue_bond_angles.items():
        lookup = {frozenset((b.atom1_name, b.atom2_name)): b for b in residue_bonds[res]}
        residue_virtual_bonds[res] = [
            _virtual_bond(lookup[frozenset((ang.atom1_name, ang.atom2_name))],
                          lookup[frozenset((ang.atom2_name, ang.atom3name))], ang)
            for ang in angles]
    return residue_bonds, residue_virtual_bonds, residue_bond_angles


def make_atom14_dists_bounds(overlap_tolerance: float = 1.5,
                             bond_length_tolerance_factor: float = 15) -> Dict[str, np.ndarray]:
    """Per-restype [21, 14, 14] lower/upper distance bounds and stddevs between atoms of one residue.

    Non-bonded pairs: lower = sum of van der Waals radii - overlap_tolerance, upper = 1e10. Bonded pairs and
    pairs spanning a bond angle: literature length -/+ bond_length_tolerance_factor * stddev. Used by the
    within-residue violation check (Supplement 1.9.11).
    """
    lower = np.zeros((21, 14, 14), np.float32)
    upper = np.zeros((21, 14, 14), np.float32)
    stddev = np.zeros((21, 14, 14), np.float32)
    residue_bonds, residue_virtual_bonds, _ = load_stereo_chemical_props()
    for rt, r in enumerate(restypes):
        res = restype_1to3[r]
        names = restype_name_to_atom14_names[res]
        present = [i for i, n in enumerate(names) if n]
        for i in present:
            for j in present:
                if i != j:
                    lower[rt, i, j] = (van_der_waals_radius[names[i][0]] + van_der_waals_radius[names[j][0]]
                                       - overlap_tolerance)
                    upper[rt, i, j] = 1e10
        for bond in residue_bonds[res] + residue_virtual_bonds[res]:
            i, j = names.index(bond.atom1_name), names.index(bond.atom2_name)
            for a, b in ((i, j), (j, i)):
                lower[rt, a, b] = bond.length - bond_length_tolerance_factor * bond.stddev
                upper[rt, a, b] = bond.length + bond_length_tolerance_factor * bond.stddev
                stddev[rt, a, b] = bond.stddev
    return {"lower_bound": lower, "upper_bound": upper, "stddev": stddev}


# --------------------------------------------------------------------------------------------------------------
# Per-restype lookup tables (21 rows: 20 residues + UNK)
# --------------------------------------------------------------------------------------------------------------
def _restype_atom_tables():
    a14_to_37 = np.zeros((21, 14), np.int32)
    a37_to_14 = np.zeros((21, 37), np.int32)
    a14_mask = np.zeros((21, 14), np.float32)
    a37_mask = np.zeros((21, 37), np.float32)
    for rt, res in enumerate(resnames[:20]):
        for i, name in enumerate(restype_name_to_atom14_names[res]):
            if name:
                a14_to_37[rt, i] = atom_order[name]
                a37_to_14[rt, atom_order[name]] = i
                a14_mask[rt, i] = 1.0
                a37_mask[rt, atom_order[name]] = 1.0
    return a14_to_37, a37_to_14, a14_mask, a37_mask


# Index maps (absent atoms map to index 0, like AlphaFold's make_atom14_masks) and existence masks.
restype_atom14_to_atom37, restype_atom37_to_atom14, restype_atom14_mask, restype_atom37_mask = _restype_atom_tables()
STANDARD_ATOM_MASK = restype_atom37_mask.astype(np.int32)


def _make_swap_tables():
    swap = np.tile(np.arange(14, dtype=np.int32), (21, 1))
    ambiguous = np.zeros((21, 14), np.float32)
    for res, pairs in residue_atom_renaming_swaps.items():
        rt, names = resname_to_idx[res], restype_name_to_atom14_names[res]
        for a, b in pairs.items():
            i, j = names.index(a), names.index(b)
            swap[rt, i], swap[rt, j] = j, i
            ambiguous[rt, i] = ambiguous[rt, j] = 1.0
    renaming = np.zeros((21, 14, 14), np.float32)
    renaming[np.arange(21)[:, None], np.arange(14)[None, :], swap] = 1.0
    return swap, ambiguous, renaming


# restype_atom14_swap_index[rt, i]: atom14 slot of atom i's symmetry partner (i itself if none): the renamed
# coordinates are x[swap_index]. RENAMING_MATRICES [21, 14, 14] is the same permutation as matrices R[i, swap[i]] = 1,
# so that alt[j] = sum_i x[i] * R[i, j]. restype_atom14_is_ambiguous [21, 14]: 1 for both atoms of every swap pair.
restype_atom14_swap_index, restype_atom14_is_ambiguous, RENAMING_MATRICES = _make_swap_tables()


def _make_rigid_transformation_4x4(ex, ey, translation):
    """4x4 transform whose rotation columns are ex, ey (orthogonalised against ex) and ex x ey (Gram-Schmidt)."""
    e0 = ex / np.linalg.norm(ex)
    e1 = ey - np.dot(ey, e0) * e0
    e1 = e1 / np.linalg.norm(e1)
    mat = np.eye(4)
    mat[:3, 0], mat[:3, 1], mat[:3, 2], mat[:3, 3] = e0, e1, np.cross(e0, e1), translation
    return mat


def _make_rigid_group_constants():
    a37_group = np.zeros((21, 37), np.int32)
    a37_pos = np.zeros((21, 37, 3), np.float32)
    a14_group = np.zeros((21, 14), np.int32)
    a14_pos = np.zeros((21, 14, 3), np.float32)
    default_frame = np.zeros((21, 8, 4, 4), np.float32)
    for rt, res in enumerate(resnames[:20]):
        names14 = restype_name_to_atom14_names[res]
        pos = {}
        for name, group, xyz in rigid_group_atom_positions[res]:
            pos[name] = np.asarray(xyz, dtype=np.float64)
            a37_group[rt, atom_order[name]] = group
            a37_pos[rt, atom_order[name]] = xyz
            a14_group[rt, names14.index(name)] = group
            a14_pos[rt, names14.index(name)] = xyz
        # Supplement 1.8.1: default frames of groups 1..7 relative to their parent group.
        default_frame[rt, 0] = np.eye(4)  # backbone
        default_frame[rt, 1] = np.eye(4)  # pre-omega (no atoms)
        default_frame[rt, 2] = _make_rigid_transformation_4x4(pos["N"] - pos["CA"], np.array([1.0, 0.0, 0.0]),
                                                              pos["N"])  # phi
        default_frame[rt, 3] = _make_rigid_transformation_4x4(pos["C"] - pos["CA"], pos["CA"] - pos["N"],
                                                              pos["C"])  # psi
        chis = chi_angles_atoms[res]
        if chis:  # chi1 relative to the backbone frame
            a, b, c = (pos[n] for n in chis[0][:3])
            default_frame[rt, 4] = _make_rigid_transformation_4x4(c - b, a - b, c)
        for k in range(1, len(chis)):  # chi(k+1) relative to chi(k): its axis starts at the parent's origin
            axis_end = pos[chis[k][2]]
            default_frame[rt, 4 + k] = _make_rigid_transformation_4x4(axis_end, np.array([-1.0, 0.0, 0.0]),
                                                                      axis_end)
    return a37_group, a37_pos, a14_group, a14_pos, default_frame


(restype_atom37_to_rigid_group, restype_atom37_rigid_group_positions, restype_atom14_to_rigid_group,
 restype_atom14_rigid_group_positions, restype_rigid_group_default_frame) = _make_rigid_group_constants()


def _make_rigidgroup_tables():
    base_idx = np.zeros((21, 8, 3), np.int32)
    group_mask = np.zeros((21, 8), np.float32)
    is_ambiguous = np.zeros((21, 8), np.float32)
    ambiguity_rot = np.tile(np.eye(3, dtype=np.float32), (21, 8, 1, 1))
    base_idx[:, 0] = [atom_order["C"], atom_order["CA"], atom_order["N"]]
    base_idx[:, 3] = [atom_order["CA"], atom_order["C"], atom_order["O"]]
    group_mask[:, 0] = group_mask[:, 3] = 1.0
    for rt, res in enumerate(resnames[:20]):
        for k, chi in enumerate(chi_angles_atoms[res]):
            base_idx[rt, 4 + k] = [atom_order[n] for n in chi[1:]]
            group_mask[rt, 4 + k] = 1.0
        if res in residue_atom_renaming_swaps:  # the last chi group flips by pi under renaming
            last = 4 + len(chi_angles_atoms[res]) - 1
            is_ambiguous[rt, last] = 1.0
            ambiguity_rot[rt, last] = np.diag([1.0, -1.0, -1.0])
    return base_idx, group_mask, is_ambiguous, ambiguity_rot


# Atoms (atom37 indices) defining each group's frame: (point on -x axis, origin, point in the xy plane);
# which groups exist; which are affected by the renaming symmetry, and the rotation (diag(1,-1,-1)) mapping a
# group frame to its renamed alternative.
(restype_rigidgroup_base_atom37_idx, restype_rigidgroup_mask, restype_rigidgroup_is_ambiguous,
 restype_rigidgroup_ambiguity_rot) = _make_rigidgroup_tables()

# --------------------------------------------------------------------------------------------------------------
# PDB output helpers
# --------------------------------------------------------------------------------------------------------------
PDB_CHAIN_IDS = string.ascii_uppercase + string.ascii_lowercase + string.digits
PDB_MAX_CHAINS = len(PDB_CHAIN_IDS)  # 62
