"""Template features and embedding: host-derived torsion features (vs common.all_atom and the reference's ground
truth), distogram / pseudo-beta / backbone unit vectors vs numpy re-statements, TemplateEmbedding properties."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn
from trunk_fixtures import randomize

from helpers import reference_path
from mindsponge_fold.common import all_atom
from mindsponge_fold.common.config import load_config
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.model.embedders import dgram_from_positions, pseudo_beta
from mindsponge_fold.data.derived_features import DERIVED_FEATURES, add_derived_features
from mindsponge_fold.model.primitives import ModelContext
from mindsponge_fold.model.template import TemplateEmbedding, backbone_unit_vectors

ms.set_device("CPU")


@pytest.fixture(autouse=True)
def graph_mode():
    ms.set_context(mode=ms.GRAPH_MODE)


@pytest.fixture(scope="module")
def feats():
    f = np.load(reference_path("processed_features.npz"))
    return {k: f[k] for k in f.files}


def test_host_torsion_features(feats):
    out = add_derived_features(feats)                                   # leading recycling axis [R, T, N, ...]
    assert set(DERIVED_FEATURES) <= set(out) and "template_torsion_angles_sin_cos" not in feats
    r, t, n = feats["template_aatype"].shape
    assert out["template_torsion_angles_sin_cos"].shape == (r, t, n, 7, 2)
    assert out["template_torsion_angles_mask"].shape == (r, t, n, 7)
    for i in range(t):
        ref = all_atom.atom37_to_torsion_angles(feats["template_aatype"][1, i],
                                                feats["template_all_atom_positions"][1, i],
                                                feats["template_all_atom_masks"][1, i])
        np.testing.assert_array_equal(out["template_torsion_angles_sin_cos"][1, i], ref["torsion_angles_sin_cos"])
        np.testing.assert_array_equal(out["template_alt_torsion_angles_sin_cos"][1, i],
                                      ref["alt_torsion_angles_sin_cos"])
    # template 0 is the target chain itself: its torsions are the reference's ground-truth torsions
    gt = np.load(reference_path("ground_truth.npz"))
    np.testing.assert_allclose(out["template_torsion_angles_sin_cos"][0, 0], gt["torsion_angles_sin_cos"], atol=1e-5)
    np.testing.assert_allclose(out["template_alt_torsion_angles_sin_cos"][0, 0], gt["alt_torsion_angles_sin_cos"],
                               atol=1e-5)
    np.testing.assert_array_equal(out["template_torsion_angles_mask"][0, 0], gt["torsion_angles_mask"])
    assert out["template_torsion_angles_mask"][0, 2:].sum() == 0            # padding templates have no torsions
    assert np.isfinite(out["template_torsion_angles_sin_cos"]).all()
    # no templates: unchanged; partial template features: a one-line InputError
    assert set(add_derived_features({"aatype": feats["aatype"]})) == {"aatype"}
    with pytest.raises(InputError, match="template_all_atom_masks"):
        add_derived_features({k: feats[k] for k in ("template_aatype", "template_all_atom_positions")})


def np_canonical_rotation(n, ca, c):
    """AlphaFold's make_canonical_transform rotation (C onto +x, N into the xy plane with y > 0), restated."""
    c, n = c - ca, n - ca
    cx, cy, cz = c.T
    r1 = np.sqrt(1e-20 + cx ** 2 + cy ** 2)
    s1, c1 = -cy / r1, cx / r1
    r2 = np.sqrt(1e-20 + cx ** 2 + cy ** 2 + cz ** 2)
    s2, c2 = cz / r2, np.sqrt(cx ** 2 + cy ** 2) / r2
    one, zero = np.ones_like(cx), np.zeros_like(cx)
    rot1 = np.stack([np.stack([c1, -s1, zero], -1), np.stack([s1, c1, zero], -1), np.stack([zero, zero, one], -1)], 1)
    rot2 = np.stack([np.stack([c2, zero, s2], -1), np.stack([zero, one, zero], -1), np.stack([-s2, zero, c2], -1)], 1)
    rc = rot2 @ rot1
    n2 = np.einsum("nij,nj->ni", rc, n)
    r3 = np.sqrt(1e-20 + n2[:, 1] ** 2 + n2[:, 2] ** 2)
    s3, c3 = -n2[:, 2] / r3, n2[:, 1] / r3
    rot3 = np.stack([np.stack([one, zero, zero], -1), np.stack([zero, c3, -s3], -1), np.stack([zero, s3, c3], -1)], 1)
    return rot3 @ rc


class Features(nn.Cell):
    def construct(self, aatype, positions, pb, bb_mask_2d):
        return (pseudo_beta(aatype, positions), dgram_from_positions(pb, 39, 3.25, 50.75),
                backbone_unit_vectors(positions, bb_mask_2d))


def test_pseudo_beta_dgram_and_unit_vectors_match_numpy(feats):
    aatype = feats["template_aatype"][0, 1]                                   # 4zey: has unaligned (empty) residues
    pos = feats["template_all_atom_positions"][0, 1]
    mask = feats["template_all_atom_masks"][0, 1]
    bb = mask[:, 0] * mask[:, 1] * mask[:, 2]
    assert 0 < bb.sum() < len(bb)
    bb2 = (bb[:, None] * bb[None, :]).astype(np.float32)
    pb_ref = feats["template_pseudo_beta"][0, 1]                              # the reference pipeline's pseudo-beta
    got_pb, got_dgram, got_unit = (o.asnumpy() for o in Features()(Tensor(aatype), Tensor(pos), Tensor(pb_ref),
                                                                     Tensor(bb2)))
    np.testing.assert_allclose(got_pb, pb_ref, atol=1e-6)
    d2 = ((pb_ref[:, None] - pb_ref[None]) ** 2).sum(-1)
    edges = np.linspace(3.25, 50.75, 39) ** 2
    want = (d2[..., None] > edges) & (d2[..., None] < np.append(edges[1:], 1e8))
    np.testing.assert_array_equal(got_dgram, want.astype(np.float32))
    assert set(np.unique(got_dgram.sum(-1))) <= {0.0, 1.0}
    n_xyz, ca_xyz, c_xyz = (pos[:, k].astype(np.float64) for k in range(3))
    rot = np_canonical_rotation(n_xyz, ca_xyz, c_xyz)
    local = np.einsum("iab,ijb->ija", rot, pos[None, :, 1] - pos[:, None, 1])
    unit = local / np.sqrt(1e-6 + (local ** 2).sum(-1, keepdims=True)) * bb2[..., None]
    np.testing.assert_allclose(got_unit, unit, atol=2e-5)
    assert np.isfinite(got_unit).all() and np.abs(got_unit[bb2 > 0]).max() > 0.5
    # a leading template axis (how the model computes all templates at once) gives each template's own features
    t_aa, t_pos = feats["template_aatype"][0, :2], feats["template_all_atom_positions"][0, :2]
    t_mask, t_pb = feats["template_all_atom_masks"][0, :2], feats["template_pseudo_beta"][0, :2]
    t_bb = t_mask[..., 0] * t_mask[..., 1] * t_mask[..., 2]
    t_bb2 = (t_bb[:, :, None] * t_bb[:, None, :]).astype(np.float32)
    stacked = [o.asnumpy() for o in Features()(Tensor(t_aa), Tensor(t_pos), Tensor(t_pb), Tensor(t_bb2))]
    for k in range(2):
        one = [o.asnumpy() for o in Features()(Tensor(t_aa[k]), Tensor(t_pos[k]), Tensor(t_pb[k]), Tensor(t_bb2[k]))]
        for got, want in zip(stacked, one):
            np.testing.assert_allclose(got[k], want, atol=1e-6)
    np.testing.assert_allclose(stacked[2][1], got_unit, atol=1e-6)


class TemplateNet(nn.Cell):
    def __init__(self, emb):
        super().__init__()
        self.emb = emb

    def construct(self, query, batch, mask_2d):
        return self.emb(query, batch, mask_2d)


def test_template_embedding_permutation_masking(feats):
    """Pointwise attention over templates: invariant to template order, blind to masked templates' features,
    zero without any template. (Numerical parity with real weights: test_trunk_parity.)"""
    cfg = load_config("tiny", ["model.embeddings_and_evoformer.template.use_template_unit_vector=true"])
    tcfg = cfg.model.embeddings_and_evoformer.template
    net = TemplateNet(TemplateEmbedding(ModelContext(), tcfg, 8))
    randomize(net, np.random.default_rng(0), scale=0.3)
    n = 12
    sl = slice(20, 20 + n)
    t = {k: feats[k][0, :2, sl] for k in ("template_aatype", "template_all_atom_positions",
                                          "template_all_atom_masks", "template_pseudo_beta",
                                          "template_pseudo_beta_mask")}
    query = np.random.default_rng(1).standard_normal((n, n, 8)).astype(np.float32)
    mask_2d = np.ones((n, n), np.float32)

    names = ("template_aatype", "template_all_atom_positions", "template_all_atom_masks", "template_pseudo_beta",
             "template_pseudo_beta_mask")

    def run(tmask, order=(0, 1), garbage_in_1=False):
        arrays = [t[k][list(order)].copy() for k in names]
        if garbage_in_1:
            arrays[1][1] += 5.0
            arrays[3][1] -= 7.0
            arrays[0][1] = (arrays[0][1] + 3) % 21
        batch = {k: Tensor(a) for k, a in zip(names, arrays)}
        batch["template_mask"] = Tensor(np.asarray(tmask, np.float32))
        return net(Tensor(query), ms.mutable(batch), Tensor(mask_2d)).asnumpy()

    both = run([1, 1])
    np.testing.assert_allclose(run([1, 1], order=(1, 0)), both, rtol=1e-5, atol=1e-5)
    only0 = run([1, 0])
    np.testing.assert_allclose(run([1, 0], garbage_in_1=True), only0, rtol=1e-5, atol=1e-5)
    assert np.abs(both - only0).max() > 1e-3
    assert np.abs(run([1, 1], garbage_in_1=True) - both).max() > 1e-3
    np.testing.assert_array_equal(run([0, 0]), np.zeros_like(both))
