"""`mindsponge-fold evaluate` end to end on real structures from ../shared/data, its pairing rule, domain file,
bad input, the thin predict hook, and scripts/run_eval_casp.sh."""
import csv
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO_ROOT, renumber_pdb_text, shared_path
from mindsponge_fold.cli import main
from mindsponge_fold.common import protein
from mindsponge_fold.eval import inputs
from mindsponge_fold.eval.inputs import Domain, pair_predictions, parse_ranges
from mindsponge_fold.eval.metrics import METRIC_COLUMNS, score_model

HEADER = "target,n_native,n_matched,tm_score,gdt_ts,gdt_ha,lddt,lddt_ca,rmsd_ca,plddt_mean"


def _natives_dir(tmp_path, names=("T1043", "T1031", "T1026")):
    d = tmp_path / "natives"
    d.mkdir()
    for name in names:
        shutil.copy(shared_path("data", "casp14_dev", "natives", f"{name}.pdb"), d / f"{name}.pdb")
    return d


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_evaluate_end_to_end(tmp_path, capsys):
    natives = _natives_dir(tmp_path, ("T1043", "T1026"))
    # T1031's native as mmCIF (written by common.protein), so both input formats are exercised
    (natives / "T1031.cif").write_text(protein.to_mmcif(protein.from_file(
        shared_path("data", "casp14_dev", "natives", "T1031.pdb"))))
    preds = tmp_path / "preds"
    preds.mkdir()
    # an AlphaFold model of T1043 named like a model file, pLDDT in the B-factor column
    shutil.copy(shared_path("data", "alphafold_testdata", "relax", "with_violations_casp14.pdb"),
                preds / "T1043_model_1.pdb")
    # T1031 as a per-target directory, the "prediction" being the native renumbered from 101 (matched by sequence)
    (preds / "T1031").mkdir()
    t1031 = shared_path("data", "casp14_dev", "natives", "T1031.pdb").read_text()
    (preds / "T1031" / "ranked_0.pdb").write_text(renumber_pdb_text(t1031, 100))
    (preds / "T1031" / "notes.txt").write_text("not a structure")
    (preds / "unrelated_model.pdb").write_text(t1031)  # matches no target: ignored
    domains = tmp_path / "domains.tsv"
    domains.write_text("target\tdomain\tranges\n# comment\nT1043\tD1\t1-70\nT1043\tT1043-D2\t71-148\n")
    out = tmp_path / "out"

    rc = main(["evaluate", "--predictions", str(preds), "--natives", str(natives), "--out", str(out),
               "--domains", str(domains)])
    assert rc == 0
    printed = capsys.readouterr()
    assert "no prediction for target T1026" in printed.err

    text = (out / "metrics.csv").read_text()
    assert text.splitlines()[0] == HEADER
    rows = {r["target"]: r for r in _read_csv(out / "metrics.csv")}
    assert list(rows) == ["T1031", "T1043", "T1043-D1", "T1043-D2"]

    # T1031: identical coordinates under different numbering
    r = rows["T1031"]
    assert int(r["n_native"]) == int(r["n_matched"]) == 95
    assert float(r["tm_score"]) == pytest.approx(1.0) and float(r["gdt_ts"]) == pytest.approx(100.0)
    assert float(r["lddt"]) == pytest.approx(1.0) and float(r["rmsd_ca"]) == pytest.approx(0.0, abs=1e-3)
    assert r["plddt_mean"] == ""  # crystallographic B-factors above 100 are not pLDDT

    # T1043: the values equal the library call on the same files
    model = inputs.read_chain(preds / "T1043_model_1.pdb")
    native = inputs.read_chain(natives / "T1043.pdb")
    direct = score_model(model, native)
    r = rows["T1043"]
    for key in METRIC_COLUMNS[3:]:  # as rounded in the CSV
        tolerance = 6e-3 if key in ("gdt_ts", "gdt_ha", "plddt_mean") else 6e-4
        assert float(r[key]) == pytest.approx(getattr(direct, key), abs=tolerance), key
    assert 0 <= float(r["tm_score"]) <= 1 and 0 <= float(r["gdt_ts"]) <= 100 and 0 <= float(r["lddt"]) <= 1
    assert float(r["plddt_mean"]) == pytest.approx(np.mean(model.b_factors[:, 1]), abs=0.01)
    assert int(rows["T1043-D1"]["n_native"]) == 70 and int(rows["T1043-D2"]["n_native"]) == 78

    md = (out / "metrics.md").read_text()
    assert "| target | n_native |" in md and "T1043_model_1.pdb" in md and "T1026" in md
    summary = json.loads((out / "summary.json").read_text())
    tms = [float(rows[t]["tm_score"]) for t in ("T1031", "T1043")]
    assert summary["targets"]["tm_score"]["mean"] == pytest.approx(np.mean(tms), abs=1e-4)
    assert summary["targets"]["tm_score"]["median"] == pytest.approx(np.median(tms), abs=1e-4)
    assert summary["domains"]["tm_score"]["n"] == 2
    for png in ("plddt_vs_lddt_ca.png", "per_target.png"):
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left behind


def test_pairing_rule(tmp_path):
    targets = ["T1043", "T1043s1", "T1031"]
    for name in ("T1043_model_2.pdb", "T1043_model_1.pdb", "T1043s1_x.cif", "T1031.pdb", "T1031-b.pdb",
                 "T10431.pdb", "readme.md"):
        (tmp_path / name).write_text("x")
    paired = pair_predictions(tmp_path, targets)
    assert paired["T1043"].name == "T1043_model_1.pdb"  # name order among non-exact matches
    assert paired["T1043s1"].name == "T1043s1_x.cif"  # longest target id wins
    assert paired["T1031"].name == "T1031.pdb"  # exact name first
    d = tmp_path / "dirs"
    (d / "T1043").mkdir(parents=True)
    for name in ("unrelaxed_model_1.pdb", "ranked_0.pdb", "ranked_1.pdb"):
        (d / "T1043" / name).write_text("x")
    assert pair_predictions(d, targets)["T1043"].name == "ranked_0.pdb"
    single = tmp_path / "T1031.pdb"
    assert pair_predictions(single, ["whatever"]) == {"whatever": single}


def test_domain_file_parsing(tmp_path):
    assert parse_ranges("1-3, 7,9-10") == (1, 2, 3, 7, 9, 10)
    assert parse_ranges("-2-1") == (-2, -1, 0, 1)
    assert Domain("T1043", "D1", (1,)).label == "T1043-D1" and Domain("T1043", "T1043-D2", (1,)).label == "T1043-D2"
    bad = tmp_path / "bad.tsv"
    bad.write_text("T1043\tD1\t1-70\nT1043\tD2\t80-x\n")
    with pytest.raises(inputs.InputError, match=r"bad\.tsv:2: bad residue range '80-x'"):
        inputs.read_domains(bad)


def _one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_bad_input_gives_one_line_error_naming_the_file(tmp_path, capsys):
    natives = _natives_dir(tmp_path, ("T1031",))
    out = tmp_path / "out"
    err = _one_line_error(capsys, ["evaluate", "--predictions", str(tmp_path / "missing"), "--natives", str(natives),
                                   "--out", str(out)])
    assert "missing" in err and "does not exist" in err
    err = _one_line_error(capsys, ["evaluate", "--predictions", str(natives), "--natives", str(tmp_path / "nope"),
                                   "--out", str(out)])
    assert str(tmp_path / "nope") in err
    preds = tmp_path / "preds"
    preds.mkdir()
    broken = preds / "T1031_model_1.pdb"
    broken.write_text("ATOM      1  CA  ALA A   1      not a number at all\nEND\n")
    err = _one_line_error(capsys, ["evaluate", "--predictions", str(preds), "--natives", str(natives),
                                   "--out", str(out)])
    assert str(broken) in err and "error" in err
    assert not out.exists() or not (out / "metrics.csv").exists()
    (preds / "T1031_model_1.pdb").unlink()
    (preds / "T9999.pdb").write_text("x")
    err = _one_line_error(capsys, ["evaluate", "--predictions", str(preds), "--natives", str(natives),
                                   "--out", str(out)])
    assert "no prediction matches any native" in err


def test_native_without_ca_atoms_is_an_error_not_a_score(tmp_path, capsys):
    """A native with no CA atom used to score TM 0.0 / lDDT 1.0 ("matched 0/0"): nothing can be scored on it."""
    natives = tmp_path / "natives"
    natives.mkdir()
    text = shared_path("data", "casp14_dev", "natives", "T1031.pdb").read_text()
    no_ca = "".join(line for line in text.splitlines(keepends=True)
                    if not (line.startswith("ATOM") and line[12:16].strip() == "CA"))
    (natives / "T1031.pdb").write_text(no_ca)
    preds = tmp_path / "preds"
    preds.mkdir()
    (preds / "T1031_model_1.pdb").write_text(text)
    out = tmp_path / "out"
    err = _one_line_error(capsys, ["evaluate", "--predictions", str(preds), "--natives", str(natives),
                                   "--out", str(out)])
    assert f"{natives / 'T1031.pdb'}: native chain" in err and "has no CA atoms" in err, err
    assert not (out / "metrics.csv").exists()
    (natives / "T1031.pdb").write_text(text)                  # and the same for a prediction without CA atoms
    (preds / "T1031_model_1.pdb").write_text(no_ca)
    err = _one_line_error(capsys, ["evaluate", "--predictions", str(preds), "--natives", str(natives),
                                   "--out", str(out)])
    assert f"{preds / 'T1031_model_1.pdb'}: predicted chain" in err and "has no CA atoms" in err, err


def test_fasta_option_is_a_thin_call_into_predict(tmp_path, monkeypatch, capsys):
    """--fasta drives the predict subcommand (add_arguments/run) and then evaluates what it wrote."""
    calls = []
    native_text = shared_path("data", "casp14_dev", "natives", "T1031.pdb").read_text()

    def add_arguments(parser):
        parser.add_argument("--fasta")
        parser.add_argument("--output-dir")
        parser.add_argument("--preset", default="model_1")

    def run(args):
        calls.append(vars(args))
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(args.output_dir) / "T1031.pdb").write_text(native_text)
        return 0

    monkeypatch.setitem(sys.modules, "mindsponge_fold.commands.predict",
                        types.SimpleNamespace(add_arguments=add_arguments, run=run))
    fasta = tmp_path / "T1031.fasta"
    fasta.write_text(">T1031\nACKIEN\n")
    natives = _natives_dir(tmp_path, ("T1031",))
    out = tmp_path / "out"
    assert main(["evaluate", "--predictions", str(tmp_path / "pred"), "--natives", str(natives), "--out", str(out),
                 "--fasta", str(fasta), "--predict-args", "--preset model_2"]) == 0
    assert calls == [{"fasta": str(fasta), "output_dir": str(tmp_path / "pred"), "preset": "model_2"}]
    assert float(_read_csv(out / "metrics.csv")[0]["tm_score"]) == pytest.approx(1.0)


def test_run_eval_casp_script(tmp_path):
    script = REPO_ROOT / "scripts" / "run_eval_casp.sh"
    res = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert res.returncode == 2 and "usage:" in res.stderr
    res = subprocess.run(["bash", str(script), "-p", str(tmp_path / "absent")], capture_output=True, text=True)
    assert res.returncode == 2 and "predictions not found" in res.stderr
    assert subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True).returncode == 0
    preds = tmp_path / "preds"
    preds.mkdir()
    shutil.copy(shared_path("data", "alphafold_testdata", "relax", "with_violations.pdb"), preds / "T1043_m1.pdb")
    env = dict(os.environ, MSF_SHARED=str(shared_path()))
    res = subprocess.run(["bash", str(script), "-p", str(preds), "-o", str(tmp_path / "out")], capture_output=True,
                         text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    rows = _read_csv(tmp_path / "out" / "metrics.csv")
    assert [r["target"] for r in rows] == ["T1043"] and 0 < float(rows[0]["tm_score"]) < 1
