"""Training-set sampling (mindsponge_fold.data.sampling, Suppl. 1.2.5): weights, seeded draws shared by ranks and
resume, the chain table in the manifest, the loader reading exactly the drawn rows; the per-step source mixing of
self-distillation training (mindsponge_fold.train.sources)."""
import shutil

import numpy as np
import pytest
from helpers import reference_path

from mindsponge_fold.common.config import load_config
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data import chain_table
from mindsponge_fold.data import mindrecord as mr
from mindsponge_fold.data import sampling
from mindsponge_fold.data.dataset import create_train_dataset, epoch_indices
from mindsponge_fold.train import sources

NAMES = ["2crb_A", "s1_A", "s2_A", "s3_A", "s4_A", "s5_A"]
# chain table rows: name -> (length, cluster id, cluster size); 2crb_A's real length is 97 (the table's length is
# make-training-set's, the manifest's seq_length the features')
CLUSTERS = {"2crb_A": ("c0", 1), "s1_A": ("c1", 1), "s2_A": ("c2", 2), "s3_A": ("c2", 2), "s4_A": ("c3", 3),
            "s5_A": ("c3", 3)}
HEADER = chain_table.HEADER


def write_table(path, rows=CLUSTERS):
    lines = [HEADER] + [f"{n}\t97\t2.1\t2001-01-01\t{c}\t{k}" for n, (c, k) in rows.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("sampling")
    (root / "in").mkdir()
    for name in NAMES:
        shutil.copy(reference_path("raw_features.npz"), root / "in" / f"{name}.npz")
    out = root / "train.mindrecord"
    mr.convert(root / "in", out, num_shards=2, progress=False, chain_table=write_table(root / "chains.tsv"))
    return out


@pytest.fixture(scope="module")
def cfg():
    return load_config("tiny", ["data.train.crop_size=16"])


def test_weights_follow_the_paper():
    # (1 / cluster_size) * max(min(N, 512), 256) / 512
    w = sampling.sample_weights([50, 256, 384, 512, 2000, 384], [1, 1, 1, 1, 1, 3])
    np.testing.assert_allclose(w, [0.5, 0.5, 0.75, 1.0, 1.0, 0.25])


def test_draw_frequencies_follow_the_weights():
    """Many epochs of weighted draws: each sample's frequency matches w / sum(w) (chi-square, 5 dof, p = 0.001
    threshold 20.5); the uniform mode visits each sample exactly once per epoch."""
    w = sampling.sample_weights([100, 300, 400, 512, 1000, 600], [1, 1, 2, 2, 1, 4])
    counts = np.zeros(len(w))
    epochs = 3000
    for epoch in range(epochs):
        counts += np.bincount(sampling.epoch_draw(w, seed=7, epoch=epoch), minlength=len(w))
    expected = w / w.sum() * counts.sum()
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 20.5, (counts, expected)
    # the weights matter: the heaviest sample is drawn ~4x as often as the lightest (1.0 vs 0.25 weight)
    assert counts[4] > 3 * counts[5]
    for epoch in range(3):
        assert sorted(sampling.epoch_draw(w, 7, epoch, "uniform")) == list(range(len(w)))


def test_draws_identical_across_ranks_and_calls():
    w = np.ones(7)
    draw = sampling.epoch_draw(w, 3, 5)
    np.testing.assert_array_equal(draw, sampling.epoch_draw(w, 3, 5))
    assert not np.array_equal(draw, sampling.epoch_draw(w, 3, 6))            # a new epoch, a new draw
    assert not np.array_equal(draw, sampling.epoch_draw(w, 3, 5, stream=1))  # another source, another stream
    shares = [sampling.rank_share(draw, r, 3) for r in range(3)]
    assert [len(s) for s in shares] == [3, 3, 3]                             # 7 padded to 9 by wrapping
    interleaved = np.stack(shares, 1).ravel()
    np.testing.assert_array_equal(interleaved, np.resize(draw, 9))


def test_chain_table_in_manifest(records, tmp_path):
    samples = mr.load_manifest(records)["samples"]
    assert {n: (e["cluster_id"], e["cluster_size"]) for n, e in samples.items()} == CLUSTERS
    assert all(e["resolution"] == 2.1 and e["release_date"] == "2001-01-01" for e in samples.values())
    bad = tmp_path / "bad.tsv"
    bad.write_text("chain\tlength\n")
    with pytest.raises(InputError, match="not a chain table"):
        sampling.read_chain_table(bad)
    bad.write_text(HEADER + "\nx_A\t97\t2.0\t2001-01-01\tc\tmany\n")
    with pytest.raises(InputError, match="must be integers"):
        sampling.read_chain_table(bad)
    with pytest.raises(InputError, match=r"1 sample\(s\) are not in the chain table \(e.g. 's5_A'\)"):
        rows = {n: v for n, v in CLUSTERS.items() if n != "s5_A"}
        mr.convert(records.parent / "in", records, num_shards=2, progress=False,
                   chain_table=write_table(tmp_path / "short.tsv", rows))


def _names(pipeline):
    return [str(r["name"][0]) for r in pipeline.create_dict_iterator(output_numpy=True, num_epochs=1)]


def test_loader_reads_the_drawn_rows_on_each_rank_and_after_resume(records, cfg):
    """The loader's samples are the manifest's weighted draw (cluster sizes from the chain table) for every rank,
    across both shard files; resuming after k batches continues the same draw."""
    manifest = mr.load_manifest(records)
    rows = sampling.manifest_rows(manifest)
    draw = sampling.epoch_draw(sampling.manifest_weights(manifest, rows), seed=11, epoch=2)
    seen, summaries = [], []
    for rank in range(2):
        got = _names(create_train_dataset(records, cfg, batch_size=1, seed=11, epoch=2, rank=rank, group_size=2,
                                          num_workers=1, on_epoch=summaries.append))
        assert got == [rows[i] for i in sampling.rank_share(draw, rank, 2)]
        seen.append(got)
    assert summaries[0] == summaries[1] == sampling.draw_summary(rows, draw, manifest)
    assert summaries[0]["draws"] == 6 and summaries[0]["clusters"] <= 4
    resumed = _names(create_train_dataset(records, cfg, batch_size=1, seed=11, epoch=2, rank=1, group_size=2,
                                          num_workers=1, skip_batches=2))
    assert resumed == seen[1][2:]
    assert len(set(draw.tolist())) < len(draw)         # drawn with replacement: some rows read twice
    assert _names(create_train_dataset(records, cfg, batch_size=1, seed=11, epoch=2, rank=1, group_size=2,
                                       num_workers=1, skip_batches=3)) == []
    indices, _ = epoch_indices(records, cfg, 11, 2, shuffle=False)
    assert indices == list(range(6))


def test_source_mixing_is_seeded_and_resumable():
    """Per-slot source draws follow the fraction, differ between ranks, and the examples consumed before a step are
    what the steps before it chose (what a resumed run recomputes)."""
    picks = np.concatenate([sources.source_choices(0, s, 0, 4, 0.75) for s in range(500)])
    assert abs(picks.mean() - 0.75) < 0.03
    assert not np.array_equal(sources.source_choices(0, 3, 0, 8, 0.5), sources.source_choices(0, 3, 1, 8, 0.5))
    pdb, distill = sources.consumed_before(0, 10, 1, 2, 0.75)
    chosen = np.concatenate([sources.source_choices(0, s, 1, 2, 0.75) for s in range(10)])
    assert (pdb, distill) == (int((~chosen).sum()), int(chosen.sum()))
    both = sources.global_counts(0, 10, 2, 2, 0.75)
    assert both["distillation"] == distill + sources.consumed_before(0, 10, 0, 2, 0.75)[1]
    assert sum(both.values()) == 40
