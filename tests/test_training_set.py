"""make-training-set (AlphaFold 2 supplement 1.2.5 filters, clustering, resume, per-chain errors), the chain table
it writes, and the training templates' date / duplicate filters (supplement 1.2.3)."""
import pytest

from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data.chain_table import HEADER, ChainRecord, read_chain_table, write_chain_table


def test_chain_table_round_trip_and_bad_rows(tmp_path):
    rows = [ChainRecord("1psm_a", 38, None, "1990-01-01", "c1", 2),
            ChainRecord("2q2k_A", 70, 2.5, "2008-01-01", "c1", 2)]
    path = tmp_path / "chains.tsv"
    write_chain_table(path, rows)
    assert path.read_text().splitlines()[0] == HEADER
    assert HEADER.split("\t") == ["chain_id", "length", "resolution", "release_date", "cluster_id", "cluster_size"]
    assert read_chain_table(path) == rows
    path.write_text(HEADER + "\n2q2k_A\t70\t2.5\t2008/01/01\tc1\t1\n")
    with pytest.raises(InputError, match=r"chains.tsv:2: release_date"):
        read_chain_table(path)
