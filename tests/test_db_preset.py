"""``--db-preset reduced_dbs`` (AlphaFold's option): the small BFD, a FASTA, searched with the real jackhmmer ->
small_bfd_hits.sto, in place of BFD + Uniclust30 with hhblits. The database is written here: six NRBF2 homologues of
2crb A and three unrelated merozoite-protein sequences (1psm A's family), from the openfold test MSAs."""
import shutil

import numpy as np
import pytest

from helpers import QUERY_2CRB_A as QUERY
from helpers import write_search_database
from mindsponge_fold.cli import main
from mindsponge_fold.data import parsers


@pytest.fixture
def small_bfd(tmp_path):
    return write_search_database(tmp_path, "small_bfd.fasta", homologues=slice(1, 7), unrelated=slice(1, 4))


def _make_features(tmp_path, *extra):
    msa_dir = tmp_path / "msas"
    msa_dir.mkdir(exist_ok=True)
    return main(["make-features", "--fasta", str(tmp_path / "q.fasta"), "--alignments-dir", str(msa_dir),
                 "--out", str(tmp_path / "raw.npz"), *extra])


@pytest.mark.tools
def test_reduced_dbs_searches_small_bfd_with_jackhmmer(tmp_path, small_bfd, capsys):
    if shutil.which("jackhmmer") is None:
        pytest.skip("jackhmmer not installed (scripts/setup.sh --tools)")
    db, homologues, unrelated = small_bfd
    assert _make_features(tmp_path, "--db-preset", "reduced_dbs", "--small-bfd-database", str(db)) == 0, \
        capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "msas").iterdir()) == ["small_bfd_hits.sto"]   # AlphaFold's name
    msa = parsers.read_msa(tmp_path / "msas" / "small_bfd_hits.sto")
    assert msa.sequences[0] == QUERY
    hits = {d.split("/")[0] for d in msa.descriptions[1:]}
    assert len(hits) >= 4 and hits <= homologues and not hits & unrelated      # the NRBF2 family only
    raw = np.load(tmp_path / "raw.npz")
    assert raw["msa"].shape == (len(dict.fromkeys(msa.sequences)), len(QUERY))
    # the same settings through predict's feature stage (no model needed for the features)
    from mindsponge_fold.data.search import SearchSettings
    from mindsponge_fold.predict.features import FeatureBuilder
    from mindsponge_fold.predict.inputs import Target
    from mindsponge_fold.predict.settings import FeatureSettings
    builder = FeatureBuilder(FeatureSettings(search=SearchSettings(db_preset="reduced_dbs",
                                                                   small_bfd_database=str(db))))
    features = builder.raw_features(Target("2crb_A", QUERY, "2crb_A", "q.fasta"), tmp_path / "predict_work")
    np.testing.assert_array_equal(features["msa"], raw["msa"])
    assert (tmp_path / "predict_work" / "msas" / "small_bfd_hits.sto").exists()


@pytest.mark.parametrize("args, needles", [
    (["--db-preset", "reduced_dbs"], ("--db-preset reduced_dbs needs --small-bfd-database",)),
    (["--db-preset", "reduced_dbs", "--small-bfd-database", "SMALL", "--bfd-database", "/db/bfd"],
     ("--db-preset reduced_dbs", "drop --bfd-database")),
    (["--small-bfd-database", "SMALL"], ("--small-bfd-database is for --db-preset reduced_dbs",)),
])
@pytest.mark.parametrize("command", ["make-features", "predict"])
def test_wrong_preset_combination_is_one_line_error(tmp_path, small_bfd, capsys, args, needles, command):
    args = [str(small_bfd[0]) if a == "SMALL" else a for a in args]
    if command == "make-features":
        status = _make_features(tmp_path, *args)
    else:
        status = main(["predict", "--fasta", str(tmp_path / "q.fasta"), "--output-dir", str(tmp_path / "out"),
                       "--models", "tiny", "--random-weights", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith(f"mindsponge-fold {command}: error:"), err
    for needle in needles:
        assert needle in err[0], err[0]
    assert not (tmp_path / "raw.npz").exists() and not (tmp_path / "out").exists()
