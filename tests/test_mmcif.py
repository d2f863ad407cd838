"""mmCIF parsing (mindsponge_fold.data.mmcif) on the real openfold test mmCIFs."""
import numpy as np
import pytest

from helpers import reference_path, shared_path
from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data import mmcif


def _cif(pdb_id):
    return shared_path("data", "openfold_testdata", "mmcifs", f"{pdb_id}.cif")


def test_2crb_chain_equals_reference_ground_truth():
    ref = np.load(reference_path("raw_features.npz"))
    chain = mmcif.load_chain(_cif("2crb"), "A")
    assert chain.sequence == ref["sequence"][0].decode()
    assert (chain.author_chain_id, chain.label_chain_ids, chain.file_id) == ("A", ("A",), "2crb")
    assert (chain.structure_method, chain.release_date, chain.resolution) == ("solution nmr", "2005-11-20", 0.0)
    np.testing.assert_array_equal(chain.atom_mask, ref["all_atom_mask"])
    np.testing.assert_array_equal(chain.atom_positions.astype(np.float32), ref["all_atom_positions"])


def test_selenomethionine_is_x_with_se_in_sd_slot():
    m = mmcif.parse_mmcif(_cif("4zey"))
    seq = m.chain_to_seqres["A"]
    assert [i for i, c in enumerate(seq) if c == "X"] == [1, 42, 62]   # the three MSE of the SEQRES
    assert m.header == {"structure_method": "x-ray diffraction", "release_date": "2015-05-06", "resolution": 1.5}
    pos, mask = mmcif.get_atom_positions(m, "A")
    # Read the Se atoms straight from the mmCIF table, independently of the parser under test.
    from Bio.PDB.MMCIF2Dict import MMCIF2Dict
    d = MMCIF2Dict(str(_cif("4zey")))
    sd = rc.atom_order["SD"]
    rows = [i for i, (a, c, ch) in enumerate(zip(d["_atom_site.label_atom_id"], d["_atom_site.label_comp_id"],
                                                 d["_atom_site.auth_asym_id"])) if a == "SE" and c == "MSE"
            and ch == "A" and d["_atom_site.label_alt_id"][i] in (".", "A")]
    seq_ids = [int(d["_atom_site.label_seq_id"][i]) - 1 for i in rows]
    assert sorted(set(seq_ids)) == [1, 42, 62]
    for i, r in zip(seq_ids, rows):
        expected = [float(d[f"_atom_site.Cartn_{k}"][r]) for k in "xyz"]
        assert mask[i, sd] == 1
        np.testing.assert_allclose(pos[i, sd], expected, atol=1e-3)


def test_arginine_nh1_is_the_nitrogen_nearer_cd():
    m = mmcif.parse_mmcif(_cif("4zey"))
    pos, mask = mmcif.get_atom_positions(m, "A")
    cd, nh1, nh2 = (rc.atom_order[a] for a in ("CD", "NH1", "NH2"))
    args = [i for i, c in enumerate(m.chain_to_seqres["A"]) if c == "R" and mask[i, [cd, nh1, nh2]].all()]
    assert len(args) >= 3
    for i in args:
        assert np.linalg.norm(pos[i, nh1] - pos[i, cd]) <= np.linalg.norm(pos[i, nh2] - pos[i, cd])


def test_author_and_label_chain_ids():
    m = mmcif.parse_mmcif(_cif("5kc1"))
    assert m.label_to_author["A"] == "C" and m.label_to_author["C"] == "A"
    assert mmcif.resolve_chain(m, "A") == "A"   # author ids win
    chain = mmcif.load_chain(_cif("5kc1"), "A")
    assert chain.label_chain_ids == ("C",) and len(chain.sequence) == 226
    # Unresolved residues (the N-terminal part of this chain) have an all-zero mask, resolved ones a CA.
    ca = chain.atom_mask[:, rc.atom_order["CA"]]
    assert ca[:100].sum() == 0 and ca.sum() >= 20
    m2 = mmcif.parse_mmcif(_cif("2q2k"))
    assert sorted(m2.chain_to_seqres) == ["A", "B"]
    assert mmcif.resolve_chain(m2, "C") == "B"   # 'C' is only a label id
    with pytest.raises(InputError, match=r"2q2k\.cif: no protein chain 'Z' \(author chains: A, B; label chains"):
        mmcif.resolve_chain(m2, "Z")


def test_electron_microscopy_resolution():
    m = mmcif.parse_mmcif(_cif("3zee"))
    assert m.header["structure_method"] == "electron microscopy" and m.header["resolution"] == 6.1
