"""Training loader (mindsponge_fold.data.dataset): sharding, determinism, shapes."""
import shutil

import numpy as np
import pytest
from helpers import reference_path

from mindsponge_fold.common.config import load_config
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data import feature_shapes as fs
from mindsponge_fold.data import mindrecord as mr
from mindsponge_fold.data.dataset import create_train_dataset, iterate_batches

NAMES = ["2crb_A", "s1_A", "s2_A", "s3_A", "s4_A", "s5_A"]


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    (root / "in").mkdir()
    for name in NAMES:        # the same chain under several names: each name gets its own random draws
        shutil.copy(reference_path("raw_features.npz"), root / "in" / f"{name}.npz")
    out = root / "train.mindrecord"
    mr.convert(root / "in", out, num_shards=2, progress=False)
    return out


@pytest.fixture(scope="module")
def cfg():
    return load_config("tiny", ["data.common.use_templates=true", "data.train.crop_size=48"])


def _rows(data, cfg, **kw):
    kw.setdefault("seed", 0)
    pipeline = create_train_dataset(data, cfg, **kw)
    return list(pipeline.create_dict_iterator(output_numpy=True, num_epochs=1))


def test_two_shards_cover_every_sample_once(records, cfg):
    """Uniform sampling: every sample once per epoch, the ranks' shares disjoint (weighted sampling, the default, is
    tested in test_sampling.py)."""
    seen = []
    for rank in range(2):
        rows = _rows(records, cfg, rank=rank, group_size=2, batch_size=1, sampling_mode="uniform")
        seen.append([str(r["name"][0]) for r in rows])
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == NAMES
    # when the ranks cannot get equal shares, MindDataset repeats samples to keep them in step
    seen = [[str(r["name"][0]) for r in _rows(records, cfg, rank=k, group_size=4, batch_size=1,
                                               sampling_mode="uniform")] for k in range(4)]
    assert sorted(set(sum(seen, []))) == NAMES and all(len(s) == 2 for s in seen)


def test_shapes_and_recycle_axis(records, cfg):
    rows = _rows(records, cfg, batch_size=2, num_workers=2)
    assert len(rows) == 3                                   # 6 samples, batch 2
    R, crop = cfg.train.max_recycle + 1, 48
    sizes = {fs.N_RES: crop, fs.N_SEQ: cfg.data.train.max_msa_clusters - cfg.data.train.max_templates,
             fs.N_EXTRA: cfg.data.train.max_extra_msa, fs.N_TEMPL: cfg.data.train.max_templates}
    batch = rows[0]
    assert set(fs.TARGET_FEATURES) <= set(batch) and "msa_feat" in batch
    for k, v in batch.items():
        if k == "name":
            assert v.shape == (2,)
            continue
        assert v.shape == (2, R) + fs.resolve_shape(k, sizes), k
        assert v.dtype == np.dtype(fs.PROCESSED_FEATURES[k].dtype), k
    assert np.all(batch["seq_length"] == crop) and np.all(batch["seq_mask"].sum(-1) == crop)
    # a fresh MSA sample per recycling iteration, the same crop and targets
    assert not np.array_equal(batch["true_msa"][:, 0], batch["true_msa"][:, 1])
    np.testing.assert_array_equal(batch["residue_index"][:, 0], batch["residue_index"][:, 1])
    np.testing.assert_array_equal(batch["atom14_gt_positions"][:, 0], batch["atom14_gt_positions"][:, 1])


def test_deterministic_under_seed(records, cfg):
    a = _rows(records, cfg, batch_size=1, num_workers=2)
    b = _rows(records, cfg, batch_size=1, num_workers=1)
    assert [str(r["name"][0]) for r in a] == [str(r["name"][0]) for r in b]
    for ra, rb in zip(a, b):
        for k in ra:
            np.testing.assert_array_equal(ra[k], rb[k], err_msg=k)
    c = _rows(records, cfg, batch_size=1, seed=1)
    by_name = {str(r["name"][0]): r for r in a}
    assert any(not np.array_equal(by_name[str(r["name"][0])]["msa_feat"], r["msa_feat"]) for r in c)


def test_epochs_draw_new_samples(records, cfg):
    batches = list(iterate_batches(records, cfg, num_epochs=2, batch_size=1, seed=0, sampling_mode="uniform"))
    assert len(batches) == 2 * len(NAMES)
    n = len(NAMES)
    first = {str(r["name"][0]): r["residue_index"] for r in batches[:n]}
    second = {str(r["name"][0]): r["residue_index"] for r in batches[n:]}
    assert sorted(first) == sorted(second) == NAMES
    assert any(not np.array_equal(first[n], second[n]) for n in NAMES)       # new crops in epoch 2


def test_unlabeled_samples_rejected(tmp_path, cfg):
    (tmp_path / "in").mkdir()
    with np.load(reference_path("raw_features.npz")) as z:
        np.savez(tmp_path / "in" / "x_A.npz", **{k: z[k] for k in z.files if not k.startswith("all_atom")})
    mr.convert(tmp_path / "in", tmp_path / "t.mindrecord", progress=False)
    with pytest.raises(InputError, match="no labels"):
        create_train_dataset(tmp_path / "t.mindrecord", cfg)


def test_template_torsion_features_are_derived_in_the_loader(records, cfg):
    """The loader workers add the template torsion features (once per sample, the same for every recycling
    iteration); the training step takes them from the batch and no longer derives them itself."""
    from mindsponge_fold.data.derived_features import DERIVED_FEATURES, TORSION_INPUTS, add_derived_features
    from mindsponge_fold.train.step import step_inputs
    rows = _rows(records, cfg, batch_size=1, num_workers=2)
    derived = [add_derived_features({k: b[k][0, 0] for k in TORSION_INPUTS}) for b in rows]
    with_templates = [i for i, d in enumerate(derived) if d["template_torsion_angles_mask"].sum() > 0]
    assert with_templates                  # template subsampling may keep none for some draws, not for all
    batch, expected = rows[with_templates[0]], derived[with_templates[0]]
    R = cfg.train.max_recycle + 1
    for k in DERIVED_FEATURES:
        for r in range(R):
            np.testing.assert_array_equal(batch[k][0, r], expected[k], err_msg=k)
    item = step_inputs(batch, 0, R - 1)
    for k in DERIVED_FEATURES:
        np.testing.assert_array_equal(item[k].asnumpy(), batch[k][0, R - 1], err_msg=k)
    without = {k: v for k, v in batch.items() if k not in DERIVED_FEATURES}
    with pytest.raises(ValueError, match="no template torsion features"):
        step_inputs(without, 0, 0)
