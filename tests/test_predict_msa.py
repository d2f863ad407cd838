"""``predict --msa``: a ColabFold-style a3m (the query first, under any name) as each target's whole MSA, instead of
any search. End to end on 2crb A's real a3m (416 rows), given as a directory of <target>.a3m; the ColabFold test
a3m (query named '>101', repeated per database section) read as one file, with a '#' header and NUL separators."""
import json
import os

import numpy as np
import pytest

from helpers import shared_path
from mindsponge_fold.cli import main

MODEL = "tiny"


def test_predict_with_a_given_a3m_end_to_end(tmp_path, capsys):
    from mindsponge_fold.data import parsers
    a3m = shared_path("data", "openfold_testdata", "alignments", "2crb_A", "bfd_uniclust_hits.a3m")
    query = parsers.parse_a3m(a3m.read_text()).sequences[0]
    msa_dir = tmp_path / "msas_in"
    msa_dir.mkdir()
    os.symlink(a3m, msa_dir / "2crb_A.a3m")
    (tmp_path / "q.fasta").write_text(f">2crb_A from a ColabFold-style a3m\n{query}\n")
    out = tmp_path / "out"
    no_templates = ["--set", "model.embeddings_and_evoformer.template.enabled=false",   # --msa gives none: a
                    "--set", "data.common.use_templates=false"]                          # smaller graph to compile
    assert main(["predict", "--fasta", str(tmp_path / "q.fasta"), "--msa", str(msa_dir), "--output-dir", str(out),
                 "--models", MODEL, "--random-weights", "--models-to-relax", "none", *no_templates]) == 0
    d = out / "2crb_A"
    raw = np.load(d / "features.npz")
    unique_rows = len(dict.fromkeys(parsers.parse_a3m(a3m.read_text()).sequences))
    assert raw["msa"].shape == (unique_rows, 97) and unique_rows > 300       # the a3m's rows, deduplicated
    assert raw["template_aatype"].shape[0] == 0                             # no templates with --msa
    assert raw["deletion_matrix_int"].sum() > 0                             # the a3m's insertions counted
    assert (d / "msas" / "2crb_A.a3m").read_bytes() == a3m.read_bytes()
    plddt = np.load(d / f"result_{MODEL}.npz")["confidence/plddt"]
    assert plddt.shape == (97,) and json.loads((d / "ranking_debug.json").read_text())["order"] == [MODEL]
    assert "search" not in capsys.readouterr().err.lower()


def test_colabfold_a3m_file_with_header_and_separators(tmp_path):
    from mindsponge_fold.predict.features import FeatureBuilder
    from mindsponge_fold.predict.inputs import Target
    from mindsponge_fold.predict.settings import FeatureSettings
    a3m = shared_path("data", "colabfold_testdata", "a3m", "6A5J.a3m")
    text = a3m.read_text().rstrip("\n") + "\n"
    assert text.startswith(">101\n")                                        # ColabFold names its query 101
    target = Target("6A5J", "IKKILSKIKKLLK", "6A5J", "q.fasta")
    raw = FeatureBuilder(FeatureSettings(msa=str(a3m))).raw_features(target, tmp_path / "w1")
    assert raw["msa"].shape == (1, 13)                                      # the query twice, deduplicated
    mixed = tmp_path / "6A5J.a3m"                                           # a '#' header, NUL between sections
    mixed.write_text("#13\t1\n" + text.replace(">101\nIKKILSKIKKLLK\n>101", ">101\nIKKILSKIKKLLK\n\x00>101", 1)
                     + ">hit\nIKKILSKIKKLaL-\n")
    builder = FeatureBuilder(FeatureSettings(msa=str(tmp_path)))           # a directory: <target>.a3m
    builder.check_target(target)
    raw = builder.raw_features(target, tmp_path / "w2")
    assert raw["msa"].shape == (2, 13) and raw["deletion_matrix_int"][1].tolist() == [0] * 11 + [1, 0]


def test_given_a3m_of_another_query_is_refused(tmp_path):
    from mindsponge_fold.common.errors import InputError
    from mindsponge_fold.predict.features import FeatureBuilder
    from mindsponge_fold.predict.inputs import Target
    from mindsponge_fold.predict.settings import FeatureSettings
    a3m = shared_path("data", "colabfold_testdata", "a3m", "6A5J.a3m")
    other = Target("x", "IKKILSKIKKLLA", "x", "q.fasta")
    with pytest.raises(InputError, match="is not the query sequence of q.fasta \\(target 'x'\\)"):
        FeatureBuilder(FeatureSettings(msa=str(a3m))).check_target(other)
