"""``--use-mmseqs2``: the real MMseqs2 (Debian package mmseqs2) on tiny local databases written here: eleven NRBF2
homologues of 2crb A and four unrelated merozoite-protein sequences (1psm A's family) from the openfold test MSAs,
given as a FASTA (indexed by the command, into --mmseqs2-index-dir) and as a database made by 'mmseqs createdb'."""
import shutil
import struct
import subprocess

import numpy as np
import pytest

from helpers import QUERY_2CRB_A as QUERY
from helpers import write_search_database
from mindsponge_fold.cli import main
from mindsponge_fold.data import parsers


@pytest.fixture
def databases(tmp_path):
    return write_search_database(tmp_path, "db.fasta", homologues=slice(1, 12), unrelated=slice(1, 5), accession=True)


def _make_features(tmp_path, name, *extra):
    msa_dir = tmp_path / name
    msa_dir.mkdir()
    status = main(["make-features", "--fasta", str(tmp_path / "q.fasta"), "--alignments-dir", str(msa_dir),
                   "--out", str(tmp_path / f"{name}.npz"), *extra])
    return status, msa_dir


@pytest.mark.tools
def test_mmseqs2_search_to_msa_features(tmp_path, databases, capsys):
    if shutil.which("mmseqs") is None:
        pytest.skip("mmseqs not installed (scripts/setup.sh --tools: Debian package mmseqs2)")
    fasta, homologues, unrelated = databases
    index = tmp_path / "index"
    status, msa_dir = _make_features(tmp_path, "from_fasta", "--use-mmseqs2", "--mmseqs2-database", str(fasta),
                                     "--mmseqs2-index-dir", str(index))
    assert status == 0, capsys.readouterr().err
    assert sorted(p.name for p in msa_dir.iterdir()) == ["mmseqs2_hits.a3m"]
    msa = parsers.read_msa(msa_dir / "mmseqs2_hits.a3m")
    assert msa.descriptions[0].split()[0] == "2crb_A" and msa.sequences[0] == QUERY          # the query first
    hits = {d.split()[0] for d in msa.descriptions[1:]}
    assert len(hits) >= 8 and hits <= homologues and not hits & unrelated
    raw = np.load(tmp_path / "from_fasta.npz")
    assert raw["msa"].shape == (len(dict.fromkeys(msa.sequences)), len(QUERY))
    assert raw["deletion_matrix_int"].shape == raw["msa"].shape
    (built,) = [p for p in index.iterdir() if not p.name.startswith(".")]      # the FASTA's index, kept
    assert (built / "db.dbtype").is_file() and not [p for p in index.iterdir() if p.name.startswith(".")]
    stamp = (built / "db").stat().st_mtime_ns

    # a database made with 'mmseqs createdb', searched twice (as two databases): the same hits, the query once
    subprocess.run(["mmseqs", "createdb", str(fasta), str(tmp_path / "seqdb"), "-v", "1"], check=True,
                   stdout=subprocess.DEVNULL)
    status, msa_dir2 = _make_features(tmp_path, "from_db", "--use-mmseqs2", "--mmseqs2-database",
                                      str(tmp_path / "seqdb"), "--mmseqs2-database", str(tmp_path / "seqdb"))
    assert status == 0, capsys.readouterr().err
    msa2 = parsers.read_msa(msa_dir2 / "mmseqs2_hits.a3m")
    assert msa2.sequences == [QUERY] + 2 * msa.sequences[1:]
    np.testing.assert_array_equal(np.load(tmp_path / "from_db.npz")["msa"], raw["msa"])       # duplicates dropped

    # reuse of the index: a second search does not rebuild it; with --tool-cache-dir the result is kept
    status, again = _make_features(tmp_path, "again", "--use-mmseqs2", "--mmseqs2-database", str(fasta),
                                   "--mmseqs2-index-dir", str(index), "--tool-cache-dir", str(tmp_path / "cache"))
    assert status == 0 and (built / "db").stat().st_mtime_ns == stamp
    from mindsponge_fold.data.tools import MMseqs2
    cached = MMseqs2((str(fasta),), index_dir=str(index), cache_dir=str(tmp_path / "cache")).query(
        str(tmp_path / "q.fasta"))
    assert cached["cached"] and cached["a3m"] == (again / "mmseqs2_hits.a3m").read_text()

    # a precomputed mmseqs2_hits.a3m in the alignment directory is read, not searched again
    kept = msa_dir / "mmseqs2_hits.a3m"
    kept.write_text("".join(f">{d}\n{s}\n" for d, s in list(zip(msa.descriptions, msa.sequences))[:3]))
    assert main(["make-features", "--fasta", str(tmp_path / "q.fasta"), "--alignments-dir", str(msa_dir), "--out",
                 str(tmp_path / "kept.npz"), "--use-mmseqs2", "--mmseqs2-database", str(fasta)]) == 0
    assert np.load(tmp_path / "kept.npz")["msa"].shape[0] == len(dict.fromkeys(msa.sequences[:3]))


@pytest.mark.parametrize("extra, needles", [
    (["--use-mmseqs2"], ("--use-mmseqs2 needs --mmseqs2-database",)),
    (["--mmseqs2-database", "FASTA"], ("--mmseqs2-database is searched with --use-mmseqs2",)),
    (["--use-mmseqs2", "--mmseqs2-database", "FASTA", "--uniref90-database", "FASTA"],
     ("--use-mmseqs2 replaces", "drop --uniref90-database")),
    (["--use-mmseqs2", "--mmseqs2-database", "{tmp}/nothing"], ("nothing: --mmseqs2-database: not found",)),
    (["--use-mmseqs2", "--mmseqs2-database", "{tmp}/profile"], ("profile: --mmseqs2-database: an MMseqs2 database "
                                                                "of type 2, not amino-acid sequences",)),
])
def test_mmseqs2_option_errors(tmp_path, databases, capsys, extra, needles):
    if shutil.which("mmseqs") is None and "{tmp}" in "".join(extra):
        pytest.skip("mmseqs not installed")
    (tmp_path / "profile.dbtype").write_bytes(struct.pack("<i", 2))      # MMseqs2's HMM-profile database type
    extra = [str(databases[0]) if a == "FASTA" else a.format(tmp=tmp_path) for a in extra]
    status, _ = _make_features(tmp_path, "msas", *extra)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("mindsponge-fold make-features: error:"), err
    for needle in needles:
        assert needle in err[0], err[0]
    assert not (tmp_path / "msas.npz").exists()
