"""Protein I/O: round trips on real PDB/mmCIF files, Biopython re-parses our output, parsing policy, errors."""
import io

import numpy as np
import pytest
from Bio.PDB import MMCIFParser, PDBParser

from helpers import reference_path, shared_path
from mindsponge_fold.common import protein as P
from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.common.errors import InputError

PDB_FILES = [("alphafold_testdata", "common", "2rbg.pdb"), ("alphafold_testdata", "common", "5nmu.pdb"),
             ("alphafold_testdata", "common", "glucagon.pdb"), ("casp14_dev", "natives", "T1026.pdb"),
             ("casp14_dev", "natives", "T1043.pdb")]


def _assert_same(a: P.Protein, b: P.Protein, atol=1e-3):
    np.testing.assert_array_equal(a.aatype, b.aatype)
    np.testing.assert_array_equal(a.atom_mask, b.atom_mask)
    np.testing.assert_array_equal(a.residue_index, b.residue_index)
    np.testing.assert_array_equal(a.chain_index, b.chain_index)
    np.testing.assert_allclose(a.atom_positions, b.atom_positions, atol=atol)
    np.testing.assert_allclose(a.b_factors, b.b_factors, atol=0.005)


def _biopython_atoms(structure):
    return [a for a in next(iter(structure)).get_atoms()]


@pytest.mark.parametrize("parts", PDB_FILES, ids=[p[-1] for p in PDB_FILES])
def test_pdb_round_trip(parts):
    path = shared_path("data", *parts)
    prot = P.from_file(path)
    assert prot.num_res > 20 and prot.atom_positions.shape == (prot.num_res, 37, 3)
    text = P.to_pdb(prot)
    lines = text.splitlines()
    assert all(len(line) == 80 for line in lines)
    assert lines[0].startswith("MODEL") and lines[-2].startswith("ENDMDL") and lines[-1].startswith("END")
    assert sum(line.startswith("TER") for line in lines) == len(np.unique(prot.chain_index))
    _assert_same(P.from_pdb_string(text), prot)
    # a strict Biopython parse of our output sees exactly our atoms, with our B-factors
    structure = PDBParser(PERMISSIVE=False, QUIET=True).get_structure("x", io.StringIO(text))
    atoms = _biopython_atoms(structure)
    assert len(atoms) == int(prot.atom_mask.sum())
    np.testing.assert_allclose(sorted(a.get_bfactor() for a in atoms), sorted(prot.b_factors[prot.atom_mask > 0]),
                               atol=0.005)
    assert [c.id for c in next(iter(structure))] == list(prot.chain_ids)


@pytest.mark.parametrize("parts", [PDB_FILES[0], PDB_FILES[2], PDB_FILES[4],
                                   ("openfold_testdata", "mmcifs", "4zey.cif")],
                         ids=["2rbg", "glucagon", "T1043", "4zey"])
def test_mmcif_round_trip(parts):
    prot = P.from_file(shared_path("data", *parts))
    text = P.to_mmcif(prot, file_id="test")
    back = P.from_mmcif_string(text)
    _assert_same(back, prot)
    assert back.chain_ids == prot.chain_ids
    structure = MMCIFParser(QUIET=True).get_structure("x", io.StringIO(text))
    atoms = _biopython_atoms(structure)
    assert len(atoms) == int(prot.atom_mask.sum())
    expected = {round(float(b), 2) for b in prot.b_factors[prot.atom_mask > 0]}
    assert {round(a.get_bfactor(), 2) for a in atoms} == expected


def test_mmcif_first_model_matches_reference_ground_truth():
    """2crb is an NMR entry with many models: the first model of chain A is the reference's ground truth."""
    raw = np.load(reference_path("raw_features.npz"))
    prot = P.from_file(shared_path("data", "openfold_testdata", "mmcifs", "2crb.cif"), chain_id="A")
    np.testing.assert_array_equal(prot.aatype, raw["aatype"].argmax(-1))
    np.testing.assert_array_equal(prot.atom_mask, raw["all_atom_mask"])
    np.testing.assert_allclose(prot.atom_positions, raw["all_atom_positions"], atol=1e-6)
    assert prot.sequence() == raw["sequence"][0].decode()
    np.testing.assert_array_equal(prot.residue_index, np.arange(1, 98))


def test_parsing_policy_2rbg():
    """Waters and sulfate are skipped; selenomethionine (HETATM MSE) becomes MET with its SE stored as SD."""
    path = shared_path("data", "alphafold_testdata", "common", "2rbg.pdb")
    text = path.read_text()
    prot = P.from_pdb_string(text, path=path)
    assert prot.chain_ids == ("A", "B") and not np.any(prot.aatype == rc.unk_restype_index)
    num_mse = len({(line[21], line[22:26]) for line in text.splitlines()
                   if line.startswith("HETATM") and line[17:20] == "MSE"})
    met = prot.aatype == rc.restype_order["M"]
    sd = prot.atom_mask[:, rc.atom_order["SD"]] > 0
    assert num_mse > 0 and int((met & sd).sum()) >= num_mse
    chain_a = P.from_pdb_string(text, chain_id="A")
    chain_b = P.from_pdb_string(text, chain_id="B")
    assert chain_a.num_res + chain_b.num_res == prot.num_res and chain_b.chain_ids == ("B",)
    assert np.all(chain_b.chain_index == 0)
    # atoms never exceed the residue type's heavy atoms (+ OXT)
    allowed = P.ideal_atom_mask(prot).astype(bool)
    allowed[:, rc.atom_order["OXT"]] = True
    assert not np.any((prot.atom_mask > 0) & ~allowed)


def test_unknown_residues_and_hetero_groups():
    atom = "ATOM  {:>5} {:<4} {:>3} A{:>4}    {:>8.3f}{:>8.3f}{:>8.3f}  1.00 10.00           {:>2}"
    lines = [atom.format(1, " N", "UNK", 1, 0, 0, 0, "N"), atom.format(2, " CA", "UNK", 1, 1.4, 0, 0, "C"),
             atom.format(3, " N", "GLY", 2, 3, 0, 0, "N"), atom.format(4, " CA", "GLY", 2, 4.4, 0, 0, "C"),
             "HETATM    5  O   HOH A 101       9.000   9.000   9.000  1.00 10.00           O",
             "HETATM    6 ZN    ZN A 102       5.000   5.000   5.000  1.00 10.00          ZN", "END"]
    prot = P.from_pdb_string("\n".join(lines))
    assert prot.aatype.tolist() == [rc.unk_restype_index, rc.restype_order["G"]]
    assert prot.residue_index.tolist() == [1, 2]
    back = P.from_pdb_string(P.to_pdb(prot))
    assert back.aatype.tolist() == prot.aatype.tolist()


def test_plddt_b_factors():
    out = np.load(reference_path("outputs_recycle1.npz"))
    aatype = np.load(reference_path("processed_features.npz"))["aatype"][1]
    plddt = out["confidence/plddt"].astype(np.float32)
    prot = P.from_prediction(aatype, out["structure_module/final_atom_positions"],
                             out["structure_module/final_atom_mask"], residue_index=np.arange(len(aatype)),
                             plddt=plddt)
    assert prot.residue_index[0] == 1
    for text, parse in ((P.to_pdb(prot), P.from_pdb_string), (P.to_mmcif(prot, "pred"), P.from_mmcif_string)):
        back = parse(text)
        ca = rc.atom_order["CA"]
        np.testing.assert_allclose(back.b_factors[:, ca], plddt, atol=0.005)
        np.testing.assert_allclose(back.atom_positions, prot.atom_positions, atol=1e-3)
    # an explicit plddt overrides stored B-factors
    other = np.linspace(0, 100, prot.num_res)
    back = P.from_pdb_string(P.to_pdb(prot, plddt=other))
    np.testing.assert_allclose(back.b_factors[:, rc.atom_order["N"]], other, atol=0.005)
    with pytest.raises(ValueError):
        P.to_pdb(prot, plddt=other[:-1])


def test_ca_only_and_select():
    prot = P.from_file(shared_path("data", "alphafold_testdata", "common", "glucagon.pdb"))
    ca = P.ca_only(prot)
    assert ca.atom_mask.sum() == prot.num_res and np.all(ca.atom_mask[:, rc.atom_order["CA"]] == 1)
    back = P.from_pdb_string(P.to_pdb(ca))
    np.testing.assert_allclose(back.atom_positions[:, 1], prot.atom_positions[:, 1], atol=1e-3)
    assert prot.select(np.arange(5)).num_res == 5


def _glucagon_lines():
    path = shared_path("data", "alphafold_testdata", "common", "glucagon.pdb")
    lines = path.read_text().splitlines()
    first_atom = next(i for i, line in enumerate(lines) if line.startswith("ATOM"))
    return lines, first_atom


@pytest.mark.parametrize("edit, expect", [
    (lambda line: line[:32] + "x.xxx" + line[37:], "x"),
    (lambda line: line[:42], "z"),
    (lambda line: line[:60] + " abcde" + line[66:], "B-factor"),
])
def test_malformed_pdb_names_file_and_line(edit, expect):
    lines, i = _glucagon_lines()
    bad = lines[:i + 2] + [edit(lines[i + 2])] + lines[i + 3:]
    with pytest.raises(InputError) as err:
        P.from_pdb_string("\n".join(bad), path="broken.pdb")
    assert err.value.path == "broken.pdb" and err.value.line == i + 3
    assert f"bad or missing {expect}" in str(err.value) and str(err.value).startswith(f"broken.pdb:{i + 3}:")


def test_other_bad_inputs(tmp_path):
    lines, i = _glucagon_lines()
    text = "\n".join(lines)
    with pytest.raises(InputError, match="no chain 'Z'"):
        P.from_pdb_string(text, chain_id="Z", path="g.pdb")
    icode = lines[:i] + [lines[i][:26] + "A" + lines[i][27:]] + lines[i + 1:]
    with pytest.raises(InputError, match="insertion code"):
        P.from_pdb_string("\n".join(icode))
    with pytest.raises(InputError, match="malformed PDB"):
        P.from_pdb_string("", path="empty.pdb")
    with pytest.raises(InputError, match="no atoms found|no protein residues"):
        P.from_pdb_string("REMARK nothing here\n")
    bad_cif = tmp_path / "bad.cif"
    bad_cif.write_text("data_x\nloop_\n_atom_site.id\n1\n")
    with pytest.raises(InputError) as err:
        P.from_file(bad_cif)
    assert str(bad_cif) in str(err.value)
    with pytest.raises(InputError, match="data_"):
        P.from_mmcif_string("not a cif")
    with pytest.raises(InputError, match="cannot read"):
        P.from_file(tmp_path / "missing.pdb")


def test_protein_validation():
    n = P.PDB_MAX_CHAINS + 1
    with pytest.raises(ValueError, match="chains"):
        P.Protein(atom_positions=np.zeros((n, 37, 3)), aatype=np.zeros(n, int), atom_mask=np.ones((n, 37)),
                  residue_index=np.arange(n), chain_index=np.arange(n), b_factors=np.zeros((n, 37)))
    with pytest.raises(ValueError, match="shape"):
        P.Protein(atom_positions=np.zeros((3, 37, 3)), aatype=np.zeros(3, int), atom_mask=np.ones((3, 14)),
                  residue_index=np.arange(3), chain_index=np.zeros(3), b_factors=np.zeros((3, 37)))
