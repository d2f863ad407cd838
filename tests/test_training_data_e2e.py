"""Training data as AlphaFold 2 built it, end to end through the user's commands (issue 14's acceptance run):
``make-training-set`` over real mmCIFs and alignments (one deliberately broken mmCIF, listed in the report, the run
goes on) -> ``make-mindrecord --chain-table`` -> ``make-distillation-set`` (tiny random model) -> ``make-mindrecord``
-> ``train --distillation-data --distillation-fraction`` for a few steps, the two sources counted in the log.

The pieces are tested one by one in test_training_set.py, test_sampling.py and test_distillation.py."""
import os

import pytest
from helpers import shared_path
from test_train_cli import run_cli

from mindsponge_fold.data import mindrecord as mr
from mindsponge_fold.data import mmcif
from mindsponge_fold.data.chain_table import read_chain_table
from mindsponge_fold.train import curves, sources

CHAINS = ("1psm_A", "2q2k_A", "2q2k_B")
STEPS = 4


def _data(*parts):
    return shared_path("data", "openfold_testdata", *parts)


@pytest.mark.slow
def test_training_set_distillation_set_and_mixed_training(tmp_path):
    cifs, alignments = tmp_path / "mmcifs", tmp_path / "alignments"
    cifs.mkdir()
    alignments.mkdir()
    for pdb in ("1psm", "2q2k"):
        os.symlink(_data("mmcifs", f"{pdb}.cif"), cifs / f"{pdb}.cif")
    text = _data("mmcifs", "1psm.cif").read_text()
    (cifs / "9bad.cif").write_text(text[: len(text) // 3])             # truncated: an error row, not the end
    for chain in CHAINS:
        os.symlink(_data("alignments", chain), alignments / chain)
    os.symlink(_data("alignments", "1psm_A"), alignments / "9bad_A")

    pdb_set = tmp_path / "pdb_set"
    proc = run_cli(["make-training-set", "--mmcif-dir", str(cifs), "--alignment-dir", str(alignments),
                    "--out", str(pdb_set), "--no-templates", "--no-progress"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = dict(line.split("\t")[:2] for line in (pdb_set / "report.tsv").read_text().splitlines()[1:])
    assert report == {**{c: "ok" for c in CHAINS}, "9bad_A": "error"}
    table = {r.chain_id: r for r in read_chain_table(pdb_set / "chains.tsv")}
    assert set(table) == set(CHAINS) and table["2q2k_A"].cluster_id == table["2q2k_B"].cluster_id
    pdb_records = tmp_path / "pdb.mindrecord"
    proc = run_cli(["make-mindrecord", "--features-dir", str(pdb_set / "features"), "--out", str(pdb_records),
                    "--chain-table", str(pdb_set / "chains.tsv"), "--no-progress"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    samples = mr.load_manifest(pdb_records)["samples"]
    assert {n: e["cluster_size"] for n, e in samples.items()} == {"1psm_A": 1, "2q2k_A": 2, "2q2k_B": 2}

    fasta = tmp_path / "distill.fasta"                                 # distillation targets, named apart
    fasta.write_text("".join(f">d{c}\n{mmcif.load_chain(cifs / f'{c[:4]}.cif', c[-1]).sequence}\n"
                             for c in ("1psm_A", "2q2k_A")))
    for c in ("1psm_A", "2q2k_A"):
        os.symlink(_data("alignments", c), alignments / f"d{c}")
    distill = tmp_path / "distill_set"
    proc = run_cli(["make-distillation-set", "--fasta", str(fasta), "--alignments-dir", str(alignments),
                    "--output-dir", str(distill), "--models", "tiny", "--random-weights", "--preset", "tiny",
                    "--device", "CPU"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    kept = sorted(p.stem for p in (distill / "features").glob("*.npz"))
    assert kept, proc.stderr[-2000:]
    distill_records = tmp_path / "distill.mindrecord"
    proc = run_cli(["make-mindrecord", "--features-dir", str(distill / "features"), "--out", str(distill_records),
                    "--no-progress"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert all(e["is_distillation"] for e in mr.load_manifest(distill_records)["samples"].values())

    def draw(seed):
        return [sources.SOURCES[int(c)] for s in range(STEPS) for c in sources.source_choices(seed, s, 0, 1, 0.5)]
    seed = next(s for s in range(50) if set(draw(s)) == {"pdb", "distillation"})    # a seed that uses both
    out = tmp_path / "run"
    proc = run_cli(["train", "--config", "tiny_train", "--data", str(pdb_records), "--distillation-data",
                    str(distill_records), "--distillation-fraction", "0.5", "--out", str(out), "--steps", str(STEPS),
                    "--workers", "1", "--no-progress", "--set", f"train.seed={seed}"], tmp_path, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-4000:]
    log = [r for r in curves.read_log(out / "train_log.jsonl") if r["kind"] == "train"]
    assert [r["step"] for r in log] == list(range(1, STEPS + 1))
    assert [s for r in log for s in r["sources"]] == draw(seed)
    assert log[-1]["count/pdb"] == draw(seed).count("pdb") > 0
    assert log[-1]["count/distillation"] == draw(seed).count("distillation") > 0
    for r in log:
        assert r["names"][0] in (kept if r["sources"] == ["distillation"] else CHAINS), r
