"""scripts/download_params.sh and scripts/download_databases.sh against a file:// mirror made in tmp_path (no
network): unpacking into AlphaFold's layout, checksum mismatch (one-line error, exit 1, nothing left at the final
place), resume of a partial .part file, --dry-run listings with sizes, --help."""
import gzip
import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
PARAMS_TAR = "alphafold_params_2022-12-06.tar"


def run(script, *args, env=None):
    full_env = {k: v for k, v in os.environ.items() if k != "MSF_DOWNLOAD_BASE_URL"}
    full_env.update(env or {})
    return subprocess.run(["bash", str(SCRIPTS / script), *map(str, args)], capture_output=True, text=True,
                          env=full_env, timeout=60)


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture
def mirror(tmp_path):
    """A directory served as file://: AlphaFold's params tar (one params_model_1.npz and LICENSE) and tiny stand-ins
    of the database files."""
    m = tmp_path / "mirror"
    m.mkdir()
    buf = io.BytesIO()
    np.savez(buf, **{"alphafold/alphafold_iteration/evoformer/preprocess_1d//weights": np.arange(6.0)})
    with tarfile.open(m / PARAMS_TAR, "w") as tar:
        for name, data in (("params_model_1.npz", buf.getvalue()), ("LICENSE", b"CC BY 4.0\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (m / "bfd-first_non_consensus_sequences.fasta.gz").write_bytes(gzip.compress(b">s1\nACDE\n"))
    (m / "pdb_seqres.txt").write_text(">101m_A mol:protein length:4  MYOGLOBIN\nMVLS\n")
    (m / "uniprot_trembl.fasta.gz").write_bytes(gzip.compress(b">tr|A\nAAAA\n"))
    (m / "uniprot_sprot.fasta.gz").write_bytes(gzip.compress(b">sp|B\nCCCC\n"))
    data = b"UniRef30 a3m data\n"
    with tarfile.open(m / "UniRef30_2021_03.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("UniRef30_2021_03_a3m.ffdata")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (m / "mmCIF" / "cr").mkdir(parents=True)
    (m / "mmCIF" / "cr" / "2crb.cif.gz").write_bytes(gzip.compress(b"data_2CRB\n#\n"))
    (m / "obsolete.dat").write_text("LIST OF OBSOLETE COORDINATE ENTRIES AND SUCCESSORS\n")
    return m


def one_error_line(result, script):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: error: "), result.stderr
    return lines[0]


# ------------------------------------------------------------------------------------------------- parameters

def test_params_are_fetched_checked_and_unpacked(mirror, tmp_path):
    out = tmp_path / "af"
    want = sha256(mirror / PARAMS_TAR)
    r = run("download_params.sh", "--base-url", mirror.as_uri(), "--sha256", want, out)
    assert r.returncode == 0, r.stderr
    params = out / "params"
    assert sorted(os.listdir(params)) == ["LICENSE", "download_record.txt", "params_model_1.npz"]
    with np.load(params / "params_model_1.npz") as f:
        assert f["alphafold/alphafold_iteration/evoformer/preprocess_1d//weights"].tolist() == list(np.arange(6.0))
    record = (params / "download_record.txt").read_text()
    assert f"url: {mirror.as_uri()}/{PARAMS_TAR}" in record and f"sha256: {want}" in record
    assert f"bytes: {(mirror / PARAMS_TAR).stat().st_size}" in record
    assert sorted(os.listdir(out)) == ["params"]               # archive removed, no .partial / downloads left
    again = run("download_params.sh", "--base-url", mirror.as_uri(), out)
    assert again.returncode == 0 and "is complete" in again.stdout and "nothing to do" in again.stdout


def test_params_base_url_from_the_environment_and_keep_archive(mirror, tmp_path):
    out = tmp_path / "af"
    r = run("download_params.sh", "--keep-archive", out, env={"MSF_DOWNLOAD_BASE_URL": mirror.as_uri()})
    assert r.returncode == 0, r.stderr
    assert (out / "params" / "params_model_1.npz").is_file()
    assert sha256(out / "downloads" / PARAMS_TAR) == sha256(mirror / PARAMS_TAR)
    record = (out / "params" / "download_record.txt").read_text()
    assert f"sha256: {sha256(mirror / PARAMS_TAR)}" in record    # no checksum given: what was fetched is recorded


def test_params_checksum_mismatch_fails_in_one_line_and_leaves_nothing(mirror, tmp_path):
    out = tmp_path / "af"
    r = run("download_params.sh", "--base-url", mirror.as_uri(), "--sha256", "0" * 64, out)
    assert r.returncode == 1
    err = one_error_line(r, "download_params.sh")
    assert f"sha256 mismatch for {PARAMS_TAR}" in err and "expected " + "0" * 64 in err
    assert sha256(mirror / PARAMS_TAR) in err
    assert not (out / "params").exists() and not (out / "downloads" / PARAMS_TAR).exists()
    assert not (out / "downloads" / (PARAMS_TAR + ".part")).exists()          # a corrupt part is not kept
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]


def test_params_resume_a_partial_download(mirror, tmp_path):
    """A .part left by an interrupted run is continued, not restarted: a part whose first bytes differ from the
    source proves it (the continued file fails the checksum); a true prefix completes to the right file."""
    out = tmp_path / "af"
    src = (mirror / PARAMS_TAR).read_bytes()
    part = out / "downloads" / (PARAMS_TAR + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(b"X" * 3000)
    r = run("download_params.sh", "--base-url", mirror.as_uri(), "--sha256", sha256(mirror / PARAMS_TAR), out)
    assert r.returncode == 1 and "resuming at 3000 bytes" in r.stdout
    assert "sha256 mismatch" in one_error_line(r, "download_params.sh")
    part.write_bytes(src[:3000])
    r = run("download_params.sh", "--base-url", mirror.as_uri(), "--sha256", sha256(mirror / PARAMS_TAR), out)
    assert r.returncode == 0, r.stderr
    assert "resuming at 3000 bytes" in r.stdout
    assert (out / "params" / "params_model_1.npz").is_file() and not part.exists()


def test_params_download_failure_is_one_line(tmp_path):
    r = run("download_params.sh", "--base-url", (tmp_path / "nowhere").as_uri(), tmp_path / "af")
    assert r.returncode == 1
    err = one_error_line(r, "download_params.sh")
    assert f"download of {(tmp_path / 'nowhere').as_uri()}/{PARAMS_TAR} failed" in err and "run again" in err
    assert not (tmp_path / "af" / "params").exists()


def test_params_archive_without_parameters_is_refused(tmp_path):
    m = tmp_path / "m"
    m.mkdir()
    with tarfile.open(m / PARAMS_TAR, "w") as tar:
        info = tarfile.TarInfo("README")
        tar.addfile(info, io.BytesIO(b""))
    r = run("download_params.sh", "--base-url", m.as_uri(), tmp_path / "af")
    assert r.returncode == 1 and "holds no params_*.npz" in one_error_line(r, "download_params.sh")
    assert not (tmp_path / "af" / "params").exists()


def test_params_dry_run_and_help(tmp_path):
    out = tmp_path / "af"
    r = run("download_params.sh", "--dry-run", out)
    assert r.returncode == 0 and not out.exists()
    line = next(x for x in r.stdout.splitlines() if PARAMS_TAR in x)
    assert "5.3 GB" in line and f"https://storage.googleapis.com/alphafold/{PARAMS_TAR}" in line
    assert str(out / "params") in line
    r = run("download_params.sh", "--dry-run", "--base-url", "file:///mirror", out)
    assert f"file:///mirror/{PARAMS_TAR}" in r.stdout
    h = run("download_params.sh", "--help")
    assert h.returncode == 0
    for option in ("--sha256", "--base-url", "--dry-run", "--keep-archive", "MSF_DOWNLOAD_BASE_URL", "5.3 GB"):
        assert option in h.stdout, option
    bad = run("download_params.sh", "--sha256", "xyz", out)
    assert bad.returncode == 2 and "64 hex digits" in one_error_line(bad, "download_params.sh")
    assert run("download_params.sh").returncode == 2


# -------------------------------------------------------------------------------------------------- databases

def test_databases_unpack_into_alphafold_layout(mirror, tmp_path):
    out = tmp_path / "db"
    r = run("download_databases.sh", "--base-url", mirror.as_uri(), "--only",
            "small_bfd,pdb_seqres,uniref30,uniprot,pdb_mmcif", out)
    assert r.returncode == 0, r.stderr
    assert (out / "small_bfd" / "bfd-first_non_consensus_sequences.fasta").read_text() == ">s1\nACDE\n"
    assert (out / "pdb_seqres" / "pdb_seqres.txt").read_text().startswith(">101m_A")
    assert (out / "uniref30" / "UniRef30_2021_03_a3m.ffdata").read_text() == "UniRef30 a3m data\n"
    assert (out / "uniprot" / "uniprot.fasta").read_text() == ">tr|A\nAAAA\n>sp|B\nCCCC\n"   # TrEMBL, then SwissProt
    assert (out / "pdb_mmcif" / "mmcif_files" / "2crb.cif").read_text() == "data_2CRB\n#\n"
    assert (out / "pdb_mmcif" / "obsolete.dat").is_file()
    record = (out / "uniprot" / "download_record.txt").read_text()
    assert f"sha256: {sha256(mirror / 'uniprot_sprot.fasta.gz')}" in record
    assert sorted(os.listdir(out)) == ["pdb_mmcif", "pdb_seqres", "small_bfd", "uniprot", "uniref30"]
    again = run("download_databases.sh", "--base-url", mirror.as_uri(), "--only", "pdb_seqres", out)
    assert again.returncode == 0 and "pdb_seqres: " + str(out / "pdb_seqres") + " is complete, skipped" in again.stdout


def test_databases_checksum_mismatch_leaves_no_database(mirror, tmp_path):
    out = tmp_path / "db"
    r = run("download_databases.sh", "--base-url", mirror.as_uri(), "--only", "pdb_seqres", "--sha256",
            "pdb_seqres.txt=" + "a" * 64, out)
    assert r.returncode == 1
    assert "sha256 mismatch for pdb_seqres.txt" in one_error_line(r, "download_databases.sh")
    assert not (out / "pdb_seqres").exists() and not (out / "downloads" / "pdb_seqres.txt").exists()
    ok = run("download_databases.sh", "--base-url", mirror.as_uri(), "--only", "pdb_seqres", "--sha256",
             "pdb_seqres.txt=" + sha256(mirror / "pdb_seqres.txt"), out)
    assert ok.returncode == 0 and (out / "pdb_seqres" / "pdb_seqres.txt").is_file()


def test_databases_resume_a_partial_download(mirror, tmp_path):
    out = tmp_path / "db"
    src = (mirror / "pdb_seqres.txt").read_bytes()
    part = out / "downloads" / "pdb_seqres.txt.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(src[:10])
    r = run("download_databases.sh", "--base-url", mirror.as_uri(), "--only", "pdb_seqres", out)
    assert r.returncode == 0 and "resuming at 10 bytes" in r.stdout
    assert (out / "pdb_seqres" / "pdb_seqres.txt").read_bytes() == src


def test_databases_dry_run_lists_every_file_with_its_size(tmp_path):
    out = tmp_path / "db"
    full = run("download_databases.sh", "--dry-run", out)
    reduced = run("download_databases.sh", "--dry-run", out, "reduced_dbs")
    assert full.returncode == reduced.returncode == 0 and not out.exists()

    def files(result):
        return {line.split()[1] for line in result.stdout.splitlines() if line.startswith("  ")}

    common = {"mgy_clusters_2022_05.fa.gz", "pdb70_from_mmcif_200401.tar.gz", "mmCIF", "obsolete.dat",
              "UniRef30_2021_03.tar.gz", "uniref90.fasta.gz", "uniprot_trembl.fasta.gz", "uniprot_sprot.fasta.gz",
              "pdb_seqres.txt"}
    assert files(full) == common | {"bfd_metaclust_clu_complete_id30_c90_final_seq.sorted_opt.tar.gz"}
    assert files(reduced) == common | {"bfd-first_non_consensus_sequences.fasta.gz"}
    lines = [line for line in full.stdout.splitlines() if line.startswith("  ")]
    assert all(" GB " in line or " MB " in line or "(above)" in line for line in lines), lines
    bfd = next(line for line in lines if line.split()[0] == "bfd")
    assert "271.6 GB" in bfd and "https://storage.googleapis.com/alphafold-databases/casp14_versions/" in bfd
    assert "total: 540.8 GB to download, 2.59 TB unpacked" in full.stdout
    assert "total: 278.8 GB to download, 809.2 GB unpacked" in reduced.stdout
    mirrored = run("download_databases.sh", "--dry-run", "--base-url", "file:///m", "--only", "uniref90,pdb_mmcif",
                   out)
    assert "file:///m/uniref90.fasta.gz" in mirrored.stdout and "rsync /m/mmCIF/" in mirrored.stdout
    assert "bfd" not in mirrored.stdout


def test_databases_help_and_bad_arguments(tmp_path):
    h = run("download_databases.sh", "--help")
    assert h.returncode == 0
    for text in ("full_dbs", "reduced_dbs", "--only", "--base-url", "--sha256", "--dry-run", "uniclust30",
                 "rsync.rcsb.org::ftp_data/structures/divided/mmCIF/", "271.6 GB"):
        assert text in h.stdout, text
    bad = run("download_databases.sh", tmp_path, "medium_dbs")
    assert bad.returncode == 2 and "unknown set 'medium_dbs'" in one_error_line(bad, "download_databases.sh")
    bad = run("download_databases.sh", "--only", "bfd,pdb100", tmp_path)
    assert bad.returncode == 2 and "unknown database 'pdb100'" in one_error_line(bad, "download_databases.sh")
