"""``--templates MMCIF|DIR`` (custom templates, as ColabFold offers) on make-features and predict's feature stage,
on the real openfold test mmCIFs: without hits each file's best-aligning chain is aligned to the query; with
``--template-hits`` the hits are featurised against the given files only. Bad files: one-line errors."""
import os
import shutil

import numpy as np
import pytest

from helpers import shared_path
from mindsponge_fold.cli import main
from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.data import mmcif, parsers


def _cif(pdb_id):
    return shared_path("data", "openfold_testdata", "mmcifs", f"{pdb_id}.cif")


def _alignments(*parts):
    return shared_path("data", "openfold_testdata", "alignments", *parts)


def _make_features(tmp_path, fasta_seq, alignments, *extra, name="q"):
    (tmp_path / f"{name}.fasta").write_text(f">{name}\n{fasta_seq}\n")
    out = tmp_path / f"{name}.npz"
    status = main(["make-features", "--fasta", str(tmp_path / f"{name}.fasta"), "--alignments-dir", str(alignments),
                   "--out", str(out), *extra])
    return status, out


def _assert_native_template(raw, i, query, pdb_id, chain):
    """Template i is chain ``chain`` of ``pdb_id`` aligned residue for residue: its aatype is the query's and its
    atoms are the native's (the mmCIF read independently with mmcif.load_chain)."""
    native = mmcif.load_chain(_cif(pdb_id), chain)
    assert native.sequence == query
    assert raw["template_domain_names"][i] == f"{pdb_id}_{chain}".encode()
    aligned = raw["template_all_atom_masks"][i].any(-1)
    assert aligned.sum() == (native.atom_mask.any(-1)).sum() > 0
    query_aatype = [rc.HHBLITS_AA_TO_ID[c] for c in query]        # raw template_aatype: HHblits order
    np.testing.assert_array_equal(raw["template_aatype"][i].argmax(-1)[aligned], np.array(query_aatype)[aligned])
    np.testing.assert_allclose(raw["template_all_atom_positions"][i], native.atom_positions, atol=1e-3)
    np.testing.assert_array_equal(raw["template_all_atom_masks"][i], native.atom_mask)


def test_own_mmcif_as_template(tmp_path, capsys):
    query = mmcif.parse_mmcif(_cif("1psm")).chain_to_seqres["A"]
    status, out = _make_features(tmp_path, query, _alignments("1psm_A"), "--templates", str(_cif("1psm")))
    assert status == 0, capsys.readouterr().err
    raw = np.load(out)
    assert raw["template_aatype"].shape[0] == 1
    _assert_native_template(raw, 0, query, "1psm", "A")


def test_directory_best_first_and_unrelated_file_skipped(tmp_path, capsys):
    templates = tmp_path / "templates"
    templates.mkdir()
    for pdb_id in ("1psm", "4zey", "2crb"):        # 1psm: an unrelated 38-residue coiled coil
        os.symlink(_cif(pdb_id), templates / f"{pdb_id}.cif")
    query = parsers.read_msa(_alignments("2crb_A", "bfd_uniclust_hits.a3m")).sequences[0]
    status, out = _make_features(tmp_path, query, _alignments("2crb_A"), "--templates", str(templates))
    err = capsys.readouterr().err
    assert status == 0, err
    raw = np.load(out)
    assert list(raw["template_domain_names"]) == [b"2crb_A", b"4zey_A"]        # best-aligned first
    assert "1psm.cif: --templates: skipped" in err
    _assert_native_template(raw, 0, query, "2crb", "A")
    assert list(raw["template_sum_probs"][:, 0]) == [100.0, 90.0]
    status, out = _make_features(tmp_path, query, _alignments("2crb_A"), "--templates", str(templates),
                                 "--max-templates", "1", name="one")
    assert status == 0 and list(np.load(out)["template_domain_names"]) == [b"2crb_A"]


def test_best_chain_of_a_multichain_file_through_predict_features(tmp_path):
    """5kc1 has twelve chains of one SEQRES: the one with most resolved residues (F: 61 CA) is the template."""
    from mindsponge_fold.data.search import TemplateHitSettings
    from mindsponge_fold.predict.features import FeatureBuilder
    from mindsponge_fold.predict.inputs import Target
    from mindsponge_fold.predict.settings import FeatureSettings
    m = mmcif.parse_mmcif(_cif("5kc1"))
    resolved = {c: int(mmcif.load_chain(_cif("5kc1"), c).atom_mask[:, rc.atom_order["CA"]].sum())
                for c in m.chain_to_seqres}
    best = max(sorted(resolved), key=resolved.get)
    assert best == "F"
    query = m.chain_to_seqres["F"]
    settings = FeatureSettings(single_sequence=True,
                               template_hits=TemplateHitSettings(custom_templates=(str(_cif("5kc1")),)))
    builder = FeatureBuilder(settings)
    target = Target("5kc1_F", query, "5kc1_F", "q.fasta")
    builder.check_target(target)
    raw = builder.raw_features(target, tmp_path / "work")
    assert raw["msa"].shape == (1, len(query))
    _assert_native_template(raw, 0, query, "5kc1", "F")


def test_templates_beside_a_given_msa(tmp_path):
    """predict --msa A3M --templates FILE: the a3m is the MSA, the file the template (--msa alone gives none)."""
    from mindsponge_fold.data.search import TemplateHitSettings
    from mindsponge_fold.predict.features import FeatureBuilder
    from mindsponge_fold.predict.inputs import Target
    from mindsponge_fold.predict.settings import FeatureSettings
    a3m = _alignments("2crb_A", "bfd_uniclust_hits.a3m")
    query = parsers.read_msa(a3m).sequences[0]
    target = Target("2crb_A", query, "2crb_A", "q.fasta")
    hits = TemplateHitSettings(custom_templates=(str(_cif("2crb")),))
    raw = FeatureBuilder(FeatureSettings(msa=str(a3m), template_hits=hits)).raw_features(target, tmp_path / "w")
    assert raw["msa"].shape[0] == len(dict.fromkeys(parsers.read_msa(a3m).sequences))
    _assert_native_template(raw, 0, query, "2crb", "A")
    assert FeatureBuilder(FeatureSettings(msa=str(a3m))).raw_features(target, tmp_path / "w2")[
        "template_aatype"].shape[0] == 0


@pytest.mark.tools
def test_hits_read_from_the_given_files_only(tmp_path, capsys):
    if shutil.which("kalign") is None:
        pytest.skip("kalign not installed (scripts/setup.sh --tools)")
    query = parsers.read_msa(_alignments("bfd_uniclust_hits.a3m")).sequences[0]
    hhr = _alignments("pdb70_hits.hhr")
    all_dir = shared_path("data", "openfold_testdata", "mmcifs")
    status, full = _make_features(tmp_path, query, _alignments(), "--template-hits", str(hhr), "--mmcif-dir",
                                  str(all_dir), name="full")
    assert status == 0, capsys.readouterr().err
    status, custom = _make_features(tmp_path, query, _alignments(), "--template-hits", str(hhr),
                                    "--templates", str(_cif("4zey")), "--templates", str(_cif("2crb")), name="custom")
    assert status == 0, capsys.readouterr().err
    full, custom = np.load(full), np.load(custom)
    assert len(full["template_domain_names"]) > 2                            # 1psm, 3u8v, 5kc1... as well
    assert list(custom["template_domain_names"]) == [b"2crb_A", b"4zey_A"]   # the hhr's order (sum_probs)
    keep = [list(full["template_domain_names"]).index(n) for n in custom["template_domain_names"]]
    for key in ("template_aatype", "template_all_atom_positions", "template_all_atom_masks", "template_sum_probs"):
        np.testing.assert_array_equal(custom[key], full[key][keep], err_msg=key)


@pytest.fixture
def bad_files(tmp_path):
    junk = tmp_path / "junk.cif"
    junk.write_text("hello, not an mmCIF\n")
    no_protein = tmp_path / "rna.cif"
    no_protein.write_text(_cif("1psm").read_text().replace("peptide linking", "RNA linking"))
    (tmp_path / "empty_dir").mkdir()
    return tmp_path


@pytest.mark.parametrize("extra, needles", [
    (["--templates", "{tmp}/junk.cif"], ("junk.cif: not a readable mmCIF file",)),
    (["--templates", "{tmp}/rna.cif"], ("rna.cif: no protein chains",)),
    (["--templates", "{tmp}/missing.cif"], ("missing.cif: --templates: no such file",)),
    (["--templates", "{tmp}/empty_dir"], ("empty_dir: --templates: no mmCIF files",)),
    (["--templates", "{cif}", "--mmcif-dir", "{tmp}"], ("--templates and --mmcif-dir",)),
    (["--templates", "{cif}", "--pdb70-database", "{tmp}/pdb70"], ("--templates replaces the template search",)),
])
@pytest.mark.parametrize("command", ["make-features", "predict"])
def test_bad_templates_are_one_line_errors(bad_files, capsys, extra, needles, command):
    tmp = bad_files
    extra = [a.format(tmp=tmp, cif=_cif("1psm")) for a in extra]
    query = mmcif.parse_mmcif(_cif("1psm")).chain_to_seqres["A"]
    if command == "make-features":
        status, out = _make_features(tmp, query, _alignments("1psm_A"), *extra)
    else:
        (tmp / "q.fasta").write_text(f">q\n{query}\n")
        out = tmp / "out"
        status = main(["predict", "--fasta", str(tmp / "q.fasta"), "--output-dir", str(out), "--single-sequence",
                       "--models", "tiny", "--random-weights", *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith(f"mindsponge-fold {command}: error:"), err
    for needle in needles:
        assert needle in err[0], err[0]
    assert not out.exists() or not os.listdir(out)
