"""Training crops (mindsponge_fold.data.crop) and their consistent application by the training pipeline."""
import numpy as np
import pytest
from helpers import reference_path

from mindsponge_fold.common import all_atom
from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.common.config import load_config
from mindsponge_fold.data import crop as C
from mindsponge_fold.data import transforms as T
from mindsponge_fold.data.rng import NumpyRNG

CROP = 40


@pytest.fixture(scope="module")
def raw():
    with np.load(reference_path("raw_features.npz")) as z:
        return {k: z[k] for k in z.files}


def _cfg(spatial_prob, crop=CROP):
    return load_config("model_1_ptm", [f"data.train.crop_size={crop}", f"data.train.spatial_crop_prob={spatial_prob}",
                                       "data.common.use_templates=true", "data.train.max_extra_msa=64",
                                       "data.train.max_msa_clusters=16", "train.max_recycle=1"])


@pytest.mark.parametrize("spatial_prob", [0.0, 1.0])
def test_crop_is_consistent_across_features(raw, spatial_prob):
    out = T.process_features(raw, _cfg(spatial_prob), "train", NumpyRNG(11))
    keep = out["residue_index"][0]            # fixture residue_index is 0..L-1, so it names the source residue
    assert len(np.unique(keep)) == CROP and np.all(np.diff(keep) > 0)
    if spatial_prob == 0.0:
        np.testing.assert_array_equal(np.diff(keep), 1)
    aatype = raw["aatype"].argmax(-1)
    truth = all_atom.make_ground_truth(aatype, raw["all_atom_positions"], raw["all_atom_mask"])
    for r in range(2):                         # every recycle batch uses the same crop
        np.testing.assert_array_equal(out["residue_index"][r], keep)
        np.testing.assert_array_equal(out["aatype"][r], aatype[keep])
        np.testing.assert_array_equal(out["all_atom_positions"][r], raw["all_atom_positions"][keep])
        np.testing.assert_array_equal(out["all_atom_mask"][r], raw["all_atom_mask"][keep])
        for k in ("atom14_gt_positions", "rigidgroups_gt_frames", "pseudo_beta", "backbone_affine_mask"):
            np.testing.assert_array_equal(out[k][r], truth[k][keep], err_msg=k)
        np.testing.assert_array_equal(out["true_msa"][r, 0], aatype[keep])          # query row, cropped columns
        n_t = raw["template_all_atom_positions"].shape[0]
        np.testing.assert_array_equal(out["template_all_atom_positions"][r, :n_t],
                                      raw["template_all_atom_positions"][:, keep])
        np.testing.assert_array_equal(out["target_feat"][r, :, 1:].argmax(-1), aatype[keep])
    assert np.all(out["seq_length"] == CROP) and np.all(out["seq_mask"] == 1)


def test_short_chain_is_padded_with_masks(raw):
    out = T.process_features(raw, _cfg(0.5, crop=128), "train", NumpyRNG(0))
    L = 97
    # model_1_ptm reduces the 16 cluster rows by its 4 template slots
    assert out["aatype"].shape == (2, 128) and out["msa_feat"].shape == (2, 12, 128, 49)
    np.testing.assert_array_equal(out["seq_mask"][:, :L], 1)
    np.testing.assert_array_equal(out["seq_mask"][:, L:], 0)
    for k in ("msa_mask", "extra_msa_mask", "bert_mask", "pseudo_beta_mask", "template_pseudo_beta_mask"):
        assert not out[k][..., L:].any(), k
    for k in ("atom14_atom_exists", "all_atom_mask", "msa_feat"):
        assert not out[k][..., L:, :].any(), k
    assert out["msa_row_mask"][0].sum() == 12 and out["extra_msa_row_mask"][0].sum() == 64
    np.testing.assert_array_equal(out["seq_length"], L)


def test_spatial_crop_keeps_nearest_residues(raw):
    pos, mask = raw["all_atom_positions"], raw["all_atom_mask"]
    ca = pos[:, rc.atom_order["CA"]]
    for seed in range(5):
        keep = C.spatial_crop(pos, mask, CROP, NumpyRNG(seed))
        assert len(keep) == CROP and np.all(np.diff(keep) > 0)
        dropped = np.setdiff1d(np.arange(len(pos)), keep)
        # some kept residue is the centre: every kept CA is at least as close to it as every dropped CA
        ok = [np.linalg.norm(ca[keep] - ca[c], axis=-1).max() <= np.linalg.norm(ca[dropped] - ca[c], axis=-1).min()
              for c in keep]
        assert any(ok)


def test_spatial_crop_without_coordinates_falls_back_to_contiguous():
    keep = C.spatial_crop(np.zeros((50, 37, 3)), np.zeros((50, 37)), 10, NumpyRNG(0))
    np.testing.assert_array_equal(np.diff(keep), 1)


def test_crop_deterministic_under_seed(raw):
    cfg = _cfg(0.5)
    a = T.process_features(raw, cfg, "train", NumpyRNG(5))
    b = T.process_features(raw, cfg, "train", NumpyRNG(5))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    crops = {tuple(T.process_features(raw, cfg, "train", NumpyRNG(s))["residue_index"][0]) for s in range(6)}
    assert len(crops) > 1


def test_crop_features_gathers_every_residue_axis():
    f = {"msa_feat": np.arange(2 * 5 * 49).reshape(2, 5, 49), "aatype": np.arange(5), "seq_length": np.int32(5),
         "not_in_table": np.arange(5)}
    out = C.crop_features(f, np.array([1, 3]))
    np.testing.assert_array_equal(out["msa_feat"], f["msa_feat"][:, [1, 3]])
    np.testing.assert_array_equal(out["aatype"], [1, 3])
    assert out["seq_length"] == 2 and out["not_in_table"] is f["not_in_table"]


@pytest.mark.parametrize("preset", ["train_initial", "train_finetune"])
def test_monomer_presets_crop_contiguously(preset, raw):
    """Suppl. 1.2.8: monomer training uses contiguous crops only; spatial crops stay available by override."""
    s = T.settings_from_config(load_config(preset), "train")
    assert s.spatial_crop_prob == 0.0 and s.crop_size in (256, 384)
    L, crop = raw["aatype"].shape[0], 40
    positions, mask = raw["all_atom_positions"], raw["all_atom_mask"]
    for seed in range(20):
        keep = C.choose_crop(L, crop, NumpyRNG(seed), positions, mask, s.spatial_crop_prob)
        np.testing.assert_array_equal(np.diff(keep), 1)
    spatial = T.settings_from_config(load_config(preset, ["data.train.spatial_crop_prob=1.0"]), "train")
    gapped = [C.choose_crop(L, crop, NumpyRNG(seed), positions, mask, spatial.spatial_crop_prob)
              for seed in range(20)]
    assert any(np.any(np.diff(k) > 1) for k in gapped)       # the option still reaches the spatial crop
