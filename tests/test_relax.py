"""Amber relax (mindsponge_fold.relax) on AlphaFold's relax test structures."""
import io

import numpy as np
import pytest

pytest.importorskip("openmm")
pytest.importorskip("pdbfixer")

import openmm.app as app  # noqa: E402

from helpers import shared_path  # noqa: E402
from mindsponge_fold.common.errors import ConfigError  # noqa: E402
from mindsponge_fold.relax import amber_minimize, cleanup, utils  # noqa: E402


def _relax_file(name):
    return shared_path("data", "alphafold_testdata", "relax", name).read_text()


def _atoms(pdb_str):
    pdb = app.PDBFile(io.StringIO(pdb_str))
    return [(a.residue.chain.id, a.residue.id, a.residue.name, a.name, a.element.symbol)
            for a in pdb.topology.atoms()]


def _heavy(atoms):
    return [a for a in atoms if a[4] != "H"]


def _strip_hydrogens(pdb_str):
    return "".join(line + "\n" for line in pdb_str.splitlines()
                   if not (line.startswith("ATOM") and line[76:78].strip() == "H"))


def test_fix_pdb_adds_oxt_and_hydrogens_and_moves_nothing():
    source = _strip_hydrogens(_relax_file("model_output.pdb"))
    fixed, alterations = cleanup.fix_pdb(source)
    before, after = _atoms(source), _atoms(fixed)
    assert not [a for a in before if a[4] == "H"]
    added = set(_heavy(after)) - set(_heavy(before))
    assert added == {("A", "5", "VAL", "OXT", "O")}
    assert list(alterations["missing_terminals"].values()) == [["OXT"]]
    hydrogens = [a for a in after if a[4] == "H"]
    assert {"H2", "H3"} <= {a[3] for a in hydrogens if a[1] == "1"}  # charged N-terminus
    assert len(hydrogens) > len(_heavy(after))  # a protein has more H than heavy atoms
    cleanup.check_cleaned_atoms(fixed, source)


def test_fix_pdb_removes_water_ligands_and_single_residue_chains():
    lines = _relax_file("model_output.pdb").splitlines()
    atoms = [line for line in lines if line.startswith("ATOM")]
    lone = [line[:21] + "B" + line[22:] for line in atoms if line[22:26].strip() == "3"]  # one-residue chain B
    het = ["HETATM  200  O   HOH W   1      10.000  10.000  10.000  1.00  0.00           O  ",
           "HETATM  201 ZN    ZN Z   1      12.000  10.000  10.000  1.00  0.00          ZN  "]
    fixed, alterations = cleanup.fix_pdb("\n".join(atoms + ["TER"] + lone + ["TER"] + het + ["END"]) + "\n")
    residues = {(a[0], a[2]) for a in _atoms(fixed)}
    assert {r[0] for r in residues} == {"A"}
    assert alterations["removed_chains"] == ["B"]
    assert {"HOH", "ZN"} <= set(alterations["removed_heterogens"])


def test_fix_pdb_replaces_selenomethionine():
    lines = []
    for line in _relax_file("model_output.pdb").splitlines():
        if line.startswith("ATOM") and line[17:20] == "MET":
            if line[12:16] == " SD ":
                line = line[:12] + "SE  " + line[16:76] + "SE"
            line = "HETATM" + line[6:17] + "MSE" + line[20:]
        lines.append(line)
    fixed, alterations = cleanup.fix_pdb("\n".join(lines) + "\n")
    assert alterations["nonstandard_residues"][0][1] == "MET"
    first = [a for a in _atoms(fixed) if a[1] == "1"]
    assert {a[2] for a in first} == {"MET"} and ("A", "1", "MET", "SD", "S") in first


def test_check_cleaned_atoms_detects_a_moved_atom():
    source = _relax_file("model_output.pdb")
    fixed, _ = cleanup.fix_pdb(source)
    moved = [line[:30] + f"{float(line[30:38]) + 0.5:8.3f}" + line[38:] if line[12:16] == " CA " else line
             for line in fixed.splitlines()]
    with pytest.raises(RuntimeError, match="moved atom CA"):
        cleanup.check_cleaned_atoms("\n".join(moved) + "\n", source)


def test_restrained_minimisation_lowers_energy_and_keeps_heavy_atoms():
    source = _relax_file("model_output.pdb")
    fixed, _ = cleanup.fix_pdb(source)
    out = amber_minimize.minimize_with_retries(fixed, max_iterations=0, tolerance=2.39, stiffness=10.0)
    assert out["min_attempts"] == 1
    assert out["efinal"] < out["einit"]
    assert out["num_restrained"] == len(_heavy(_atoms(fixed)))
    rmsd, n = utils.heavy_atom_rmsd(source, out["min_pdb"])
    assert n == len(_heavy(_atoms(source))) and 0.0 < rmsd < 0.5
    assert _atoms(out["min_pdb"]) == _atoms(fixed)  # same atoms, same order, input ids kept


def test_restraints_exclusion_and_stiffness():
    fixed, _ = cleanup.fix_pdb(_relax_file("model_output.pdb"))
    free = amber_minimize.minimize(fixed, max_iterations=50, tolerance=2.39, stiffness=10.0,
                                   exclude_residues=range(5))
    assert free["num_restrained"] == 0
    ca_only = amber_minimize.minimize(fixed, max_iterations=1, tolerance=2.39, stiffness=10.0,
                                      exclude_residues=[0], restraint_set="c_alpha")
    assert ca_only["num_restrained"] == 4
    # Restraint energy 0.5 k d^2 is zero at the start (reference = starting positions): same initial energy.
    assert ca_only["einit"] == pytest.approx(free["einit"], rel=1e-6)


def test_platform_selection():
    assert amber_minimize.select_platform("CPU").getName() == "CPU"
    assert amber_minimize.select_platform("auto").getName() in ("CUDA", "OpenCL", "CPU")
    missing = next((p for p in ("CUDA", "OpenCL") if p not in amber_minimize.available_platforms()), None)
    if missing is not None:
        with pytest.raises(ConfigError, match=f"'{missing}' is not available"):
            amber_minimize.select_platform(missing)
    with pytest.raises(ConfigError):
        amber_minimize.select_platform("TPU")


def test_b_factor_overwrite_per_residue():
    source = _relax_file("model_output.pdb")
    fixed, _ = cleanup.fix_pdb(source)
    per_residue = utils.residue_b_factors(source)
    assert len(set(per_residue.values())) > 1
    out = utils.overwrite_b_factors(fixed, per_residue)
    for residue in next(iter(utils.parse_structure(out))).get_residues():
        key = (residue.get_parent().id, residue.get_id()[1], "")
        assert {a.get_bfactor() for a in residue} == {per_residue[key]}
    with pytest.raises(ValueError, match="does not have"):
        utils.overwrite_b_factors(fixed, {k: v for k, v in per_residue.items() if k[1] != 3})


# ------------------------------------------------------------------------------------------------------------------
# The whole pipeline (relax_protein) and the CLI
# ------------------------------------------------------------------------------------------------------------------
def _protein(name, index=None):
    from mindsponge_fold.common import protein

    prot = protein.from_pdb_string(_relax_file(name))
    return prot if index is None else prot.select(index)


def _check_relaxed(prot, relaxed_pdb, debug, max_rmsd):
    """What every relaxed model must satisfy, whatever the input."""
    from mindsponge_fold.common import protein, residue_constants as rc

    assert debug["violations_before"] > 0
    assert debug["violations_after"] == 0 and set(debug["violation_counts_after"].values()) == {0}
    assert debug["final_energy"] < debug["initial_energy"]
    assert 0.0 < debug["heavy_atom_rmsd_to_input"] < max_rmsd
    assert debug["heavy_atoms_compared"] == int(prot.atom_mask.sum())
    out = protein.from_pdb_string(relaxed_pdb)
    np.testing.assert_array_equal(out.aatype, prot.aatype)
    np.testing.assert_array_equal(out.residue_index, prot.residue_index)
    no_oxt = np.arange(rc.atom_type_num) != rc.atom_order["OXT"]
    np.testing.assert_array_equal(out.atom_mask[:, no_oxt], prot.atom_mask[:, no_oxt])
    ca = rc.atom_order["CA"]
    np.testing.assert_allclose(out.b_factors, np.broadcast_to(prot.b_factors[:, ca:ca + 1], out.b_factors.shape)
                               * (out.atom_mask > 0), atol=0.006)
    assert any(a.element == "H" for a in utils.parse_structure(relaxed_pdb).get_atoms())


def test_relax_removes_violations_across_a_chain_gap():
    """with_violations.pdb residues 11-30 and 41-66: clashes and a bad peptide bond; the gap must stay open."""
    from mindsponge_fold.relax.relax import relax_protein

    prot = _protein("with_violations.pdb", np.r_[10:30, 40:66])
    relaxed, debug = relax_protein(prot)
    _check_relaxed(prot, relaxed, debug, max_rmsd=0.75)
    assert debug["violation_counts_before"]["between_residue_clash"] > 0
    assert debug["alterations"]["chain_breaks"] == [("A", 41)]
    coords = utils.heavy_atom_coordinates(relaxed)
    assert np.linalg.norm(coords[("A", 30, "", "C")] - coords[("A", 41, "", "N")]) > 5.0  # not pulled shut


def test_relax_casp14_model_bond_violations():
    from mindsponge_fold.relax.relax import relax_protein

    prot = _protein("with_violations_casp14.pdb", slice(35, 62))
    relaxed, debug = relax_protein(prot, {"max_outer_iterations": 1, "platform": "CPU"})
    _check_relaxed(prot, relaxed, debug, max_rmsd=0.75)
    assert debug["violation_counts_before"]["between_residue_bond"] > 0
    assert debug["outer_iterations"] == 1 and debug["platform"] == "CPU"


def test_relax_keeps_disulfides():
    from mindsponge_fold.relax.relax import relax_protein

    prot = _protein("multiple_disulfides_target.pdb", slice(0, 60))
    relaxed, debug = relax_protein(prot, {"max_outer_iterations": 1})
    _check_relaxed(prot, relaxed, debug, max_rmsd=0.75)
    before, after = _cysteines(_relax_file("multiple_disulfides_target.pdb")), _cysteines(relaxed)
    bonded = [(i, j) for i in after for j in after if i < j and np.linalg.norm(before[i][0] - before[j][0]) < 3.0]
    assert len(bonded) == 5
    for i, j in bonded:
        assert 1.9 < np.linalg.norm(after[i][0] - after[j][0]) < 2.2  # Amber's S-S bond, 2.038 A
        assert not after[i][1] and not after[j][1]  # CYX: no thiol hydrogen
    free = set(after) - {k for pair in bonded for k in pair}
    assert free and all(after[k][1] for k in free)  # free cysteines are protonated


def _cysteines(pdb_str):
    """{residue number: (SG position, has HG)} of the CYS residues."""
    model = next(iter(utils.parse_structure(pdb_str)))
    return {r.get_id()[1]: (r["SG"].get_coord(), "HG" in r) for r in model.get_residues() if r.get_resname() == "CYS"}


def test_outer_loop_unrestrains_violating_residues(monkeypatch):
    """Violation-driven rounds: flagged residues are excluded from the restraints from the next round on, and the
    loop stops at the first round without violations or after max_outer_iterations."""
    from mindsponge_fold.relax import relax

    prot = _protein("model_output.pdb")
    calls, script = [], []

    def fake_minimize(pdb_str, **kwargs):
        calls.append(kwargs["exclude_residues"])
        pos = np.zeros((3, 3))
        return {"einit": 10.0, "efinal": 1.0, "posinit": pos, "pos": pos, "min_attempts": 1,
                "min_pdb": _relax_file("model_output.pdb")}

    def fake_metrics(_):
        flagged = np.array(script.pop(0), int)
        return {"residue_violations": flagged, "num_residue_violations": len(flagged), "counts": {}}

    monkeypatch.setattr(relax.amber_minimize, "minimize_with_retries", fake_minimize)
    monkeypatch.setattr(relax, "violation_metrics", fake_metrics)
    script[:] = [[1, 2], [2, 3], [], [0]]
    out = relax.run_pipeline(prot, relax.RelaxSettings(max_outer_iterations=5, exclude_residues=(4,)))
    assert calls == [[4], [1, 2, 4], [1, 2, 3, 4]]
    assert out["iteration"] == 3 and out["num_exclusions"] == 4 and out["attempts"] == 3
    calls.clear()
    script[:] = [[1], [2], [3]]
    out = relax.run_pipeline(prot, relax.RelaxSettings(max_outer_iterations=2, untangle=False))
    assert calls == [[], [1]] and out["num_residue_violations"] == 1 and not out["untangled"]


@pytest.mark.parametrize("second_pass, kept", [([[], [], []], True), ([[3], [3]], False)])
def test_untangle_step_control_flow(monkeypatch, second_pass, kept):
    """Violations left after the AlphaFold-style rounds: side chains of the violating residues are re-placed and the
    rounds rerun with them unrestrained from the start; the result is kept only if it has fewer violations."""
    from mindsponge_fold.relax import relax

    prot = _protein("model_output.pdb")
    calls, script, replaced = [], [], []

    def fake_minimize(pdb_str, **kwargs):
        calls.append(kwargs["exclude_residues"])
        pos = np.zeros((3, 3))
        return {"einit": 10.0 * len(calls), "efinal": 1.0, "posinit": pos, "pos": pos, "min_attempts": 1,
                "min_pdb": _relax_file("model_output.pdb")}

    num_res = [prot.num_res]

    def fake_metrics(_):
        flagged = np.array(script.pop(0), int)
        return {"residue_violations": flagged, "num_residue_violations": len(flagged), "counts": {"n": len(flagged)},
                "structural_violations": {"total_per_residue_violations_mask": np.zeros(num_res[0])}}

    def fake_replace(p, residues):
        replaced.append(list(residues))
        return p, {int(i): (5.0, 0.0) for i in residues}

    monkeypatch.setattr(relax.amber_minimize, "minimize_with_retries", fake_minimize)
    monkeypatch.setattr(relax, "violation_metrics", fake_metrics)
    monkeypatch.setattr(relax.side_chains, "replace_side_chains", fake_replace)
    script[:] = [[2], [2]] + second_pass[:2]
    out = relax.run_pipeline(prot, relax.RelaxSettings(max_outer_iterations=2, exclude_residues=(0,)))
    assert replaced == [[2]]
    assert calls == [[0], [0, 2], [0, 2], [0, 2, 3]][:len(calls)] and len(calls) == 2 + len(second_pass[:2]) - kept
    assert out["untangle_kept"] is kept and out["untangled"] == {2: (5.0, 0.0)}
    assert out["num_residue_violations"] == (0 if kept else 1)
    assert out["alphafold_counts"] == {"n": 1} and out["first_einit"] == 10.0
    if kept:
        assert out["iteration"] == 3 and out["attempts"] == 3
    script[:] = [[]]
    out = relax.run_pipeline(prot, relax.RelaxSettings(max_outer_iterations=2))
    assert replaced == [[2]] and not out["untangled"]  # clean after the AlphaFold rounds: the step never runs
    script[:], num_res[0] = [[2]], prot.num_res - 1  # clean-up dropped a residue: indices would not match
    out = relax.run_pipeline(prot, relax.RelaxSettings(max_outer_iterations=1))
    assert replaced == [[2]] and not out["untangled"] and out["num_residue_violations"] == 1


def test_side_chain_candidates_are_rigid_chi_rotations():
    from mindsponge_fold.common import residue_constants as rc
    from mindsponge_fold.common.geometry import dihedral_angle
    from mindsponge_fold.relax import side_chains

    prot = _protein("with_violations_casp14.pdb")
    bonds, _, _ = rc.load_stereo_chemical_props()
    for resname in ("TRP", "ARG", "ILE", "TYR"):
        i = int(np.flatnonzero(prot.aatype == rc.restype_order[rc.restype_3to1[resname]])[0])
        names = rc.restype_name_to_atom14_names[resname]
        pos14 = prot.atom_positions[i, rc.restype_atom14_to_atom37[prot.aatype[i]]].astype(np.float64)
        cand = side_chains.candidate_positions(pos14, resname)
        num_chi = len(rc.chi_angles_atoms[resname])
        assert len(cand) == 144 * 3 ** max(num_chi - 2, 0)
        np.testing.assert_allclose(cand[0], pos14, atol=1e-9)
        np.testing.assert_allclose(cand[:, :4], np.broadcast_to(pos14[:4], cand[:, :4].shape), atol=1e-9)
        for bond in bonds[resname]:
            a, b = names.index(bond.atom1_name), names.index(bond.atom2_name)
            np.testing.assert_allclose(np.linalg.norm(cand[:, a] - cand[:, b], axis=-1),
                                       np.linalg.norm(pos14[a] - pos14[b]), atol=1e-6)
        chi1 = [names.index(a) for a in rc.chi_angles_atoms[resname][0]]
        angles = np.asarray(dihedral_angle(*[cand[:, k] for k in chi1]))
        step = np.angle(np.exp(1j * (angles - angles[0])))
        assert len(np.unique(np.round(np.rad2deg(step)) % 360)) == 12  # the 30-degree chi1 grid


def test_replace_side_chains_moves_the_threaded_tryptophan_only():
    """TRP128 sits on the backbone of LYS46/ARG47 with ARG47's CB-CG through its ring; ARG47's CB cannot move, so
    only TRP128 gets a new rotamer, and nothing but its chi-moved atoms changes."""
    from mindsponge_fold.common import residue_constants as rc
    from mindsponge_fold.relax import side_chains

    prot = _protein("with_violations_casp14.pdb")
    assert [rc.restypes[prot.aatype[i]] for i in (46, 127)] == ["R", "W"]
    new, changed = side_chains.replace_side_chains(prot, [46, 127, 42])  # + ASP43, clash-free
    assert set(changed) == {127}
    before, after = changed[127]
    assert before > 10.0 and after < 0.2 * before
    moved = np.linalg.norm(new.atom_positions - prot.atom_positions, axis=-1) > 1e-4
    assert set(np.flatnonzero(moved.any(-1))) == {127}
    trp = rc.restype_name_to_atom14_names["TRP"]
    assert {rc.atom_types[k] for k in np.flatnonzero(moved[127])} == set(trp[5:])  # CG onwards


def test_relax_untangles_threaded_rings():
    """with_violations_casp14.pdb residues 43-52 + 125-136: ASN132's C=O passes through TYR48's ring and ARG47's
    CB-CG through TRP128's. AlphaFold's rounds leave stretched rings / a stretched C-N bond; the side-chain
    re-placement step removes every violation."""
    from mindsponge_fold.relax.relax import relax_protein

    prot = _protein("with_violations_casp14.pdb", np.r_[42:52, 124:136])
    relaxed, debug = relax_protein(prot)
    alphafold = debug["violation_counts_alphafold"]
    assert alphafold["between_residue_bond"] + alphafold["within_residue"] > 0  # the case is reproduced
    assert debug["violations_after"] == 0 and set(debug["violation_counts_after"].values()) == {0}
    assert debug["untangle_kept"] and {5, 13} <= set(debug["untangled_residues"])  # TYR48 and TRP128
    assert debug["final_energy"] < debug["initial_energy"]
    before, after = utils.heavy_atom_coordinates(_protein_pdb(prot)), utils.heavy_atom_coordinates(relaxed)
    backbone = [k for k in before if k[3] in ("N", "CA", "C", "O")]
    # Backbone stays put. OpenMM's CPU platform sums forces in thread order, so the minimum differs run to run:
    # measured 0.571 / 0.601 / 0.605 / 0.619 (CI); AlphaFold's restraint (10 kcal/mol/A^2) allows a few tenths.
    assert np.sqrt(np.mean([((before[k] - after[k]) ** 2).sum() for k in backbone])) < 0.75


def _protein_pdb(prot):
    from mindsponge_fold.common import protein

    return protein.to_pdb(prot)


def test_relax_settings_from_config():
    from mindsponge_fold.common.config import load_config
    from mindsponge_fold.relax.relax import RelaxSettings

    settings = RelaxSettings.from_config(load_config("model_1", ["relax.max_iterations=7"]))
    assert (settings.max_iterations, settings.tolerance, settings.stiffness, settings.max_outer_iterations,
            settings.platform, settings.exclude_residues, settings.untangle) == (7, 2.39, 10.0, 3, "CPU", (), True)
    with pytest.raises(ConfigError, match="unknown setting"):
        RelaxSettings.from_config({"max_iteration": 3})
    with pytest.raises(ConfigError, match="max_outer_iterations"):
        RelaxSettings.from_config({"max_outer_iterations": 0})
    with pytest.raises(ConfigError, match="not available"):
        RelaxSettings.from_config({"platform": "Metal"})
    with pytest.raises(ConfigError, match="untangle"):
        RelaxSettings.from_config({"untangle": "yes"})
    assert RelaxSettings.from_config(load_config("model_1", ["relax.untangle=false"])).untangle is False


def test_relax_rejects_unknown_residues():
    import dataclasses

    from mindsponge_fold.common.errors import InputError
    from mindsponge_fold.relax.relax import relax_protein

    prot = _protein("model_output.pdb")
    aatype = prot.aatype.copy()
    aatype[2] = 20
    with pytest.raises(InputError, match="A3 is of unknown type"):
        relax_protein(dataclasses.replace(prot, aatype=aatype))


def test_cli_relax_writes_pdb_and_debug(tmp_path, capsys):
    import json

    from mindsponge_fold.cli import main

    src = shared_path("data", "alphafold_testdata", "relax", "model_output.pdb")
    out, dbg = tmp_path / "relaxed.pdb", tmp_path / "debug.json"
    assert main(["relax", "--pdb", str(src), "--out", str(out), "--debug-json", str(dbg),
                 "--max-outer-iterations", "1", "--platform", "CPU"]) == 0
    assert "relaxed" in capsys.readouterr().out
    debug = json.loads(dbg.read_text())
    assert debug["outer_iterations"] == 1 and debug["final_energy"] < debug["initial_energy"]
    relaxed_b = utils.residue_b_factors(out.read_text())
    assert relaxed_b == pytest.approx(utils.residue_b_factors(src.read_text()), abs=0.006)


def test_cli_no_untangle_flag_sets_alphafold_behaviour(tmp_path, monkeypatch):
    from mindsponge_fold.cli import main
    from mindsponge_fold.relax import relax

    seen = []

    def fake_relax(prot, cfg):
        seen.append(relax.RelaxSettings.from_config(cfg).untangle)
        raise SystemExit(0)

    monkeypatch.setattr(relax, "relax_protein", fake_relax)
    src = shared_path("data", "alphafold_testdata", "relax", "model_output.pdb")
    for flags, expected in (([], True), (["--no-untangle"], False)):
        with pytest.raises(SystemExit):
            main(["relax", "--pdb", str(src), "--out", str(tmp_path / "o.pdb")] + flags)
        assert seen.pop() is expected


@pytest.mark.parametrize("content, message", [
    ("hello world\n", "no ATOM records"),
    ("ATOM      1  N   MET A   1      19.164 -28.4x7  26.130  1.00  0.00           N\n", "bad or missing y"),
    (None, "cannot read PDB file"),
])
def test_cli_relax_bad_input_is_one_line_error(tmp_path, capsys, content, message):
    from mindsponge_fold.cli import main

    src, out = tmp_path / "in.pdb", tmp_path / "out.pdb"
    if content is not None:
        src.write_text(content)
    assert main(["relax", "--pdb", str(src), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(src) in err and message in err
    assert not out.exists()
