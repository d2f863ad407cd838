"""Input, relative-position, recycling and extra-MSA embeddings of the trunk (Jumper et al. 2021, Suppl. Alg. 3-5,
Alg. 32, Alg. 2 lines 13-14).

The embedders are mixins of :class:`mindsponge_fold.model.trunk.EmbeddingsAndEvoformer`: their Linear/LayerNorm
Cells must be direct attributes of the trunk (``preprocess_1d``, ``prev_pos_linear``, ...) so that parameter paths are
AlphaFold's. Each mixin has an ``_init_*`` method that creates its Cells and a method used inside ``construct``.
The feature functions (pseudo-beta, distogram, relative position, extra-MSA one-hot) are plain graph-mode functions.
"""
from __future__ import annotations

import mindspore as ms
import numpy as np
from mindspore import Tensor, ops

from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.model.primitives import LayerNorm, Linear, expand

GLY = rc.restype_order["G"]
CA = rc.atom_order["CA"]
CB = rc.atom_order["CB"]
TARGET_FEAT_DIM = 22        # 21 residue types (with X) + the between-segment bit
MSA_FEAT_DIM = 49           # cluster one-hot 23 + has_deletion + deletion_value + cluster profile 23 + deletion mean
EXTRA_MSA_NUM_CLASSES = 23  # 20 amino acids + X + gap + mask token


def pseudo_beta(aatype, positions):
    """C-beta position (C-alpha for glycine) from atom37 ``positions`` [..., N, 37, 3]; AlphaFold's pseudo_beta_fn."""
    is_gly = (aatype == GLY)[..., None]
    return ops.select(ops.broadcast_to(is_gly, positions[..., CA, :].shape), positions[..., CA, :],
                      positions[..., CB, :])


def dgram_from_positions(positions, num_bins, min_bin, max_bin):
    """One-hot distogram [..., N, N, num_bins] of pairwise distances of positions [..., N, 3]; bins start at the
    squared linspace(min, max) (last bin open-ended). A squared distance exactly on a bin edge falls in no bin, as in
    AlphaFold."""
    lower = np.square(np.linspace(min_bin, max_bin, num_bins).astype(np.float32))
    upper = np.concatenate([lower[1:], np.array([1e8], np.float32)])
    diff = positions[..., :, None, :] - positions[..., None, :, :]
    dist2 = ops.sum(diff * diff, -1)[..., None]
    above = (dist2 > Tensor(lower)).astype(ms.float32)
    below = (dist2 < Tensor(upper)).astype(ms.float32)
    return above * below


def relative_position_index(residue_index, max_relative_feature):
    """Suppl. Alg. 4: clipped residue-index offset i - j shifted into 0..2*max_relative_feature."""
    offset = residue_index[:, None] - residue_index[None, :]
    return ops.clip_by_value(offset + max_relative_feature, 0, 2 * max_relative_feature).astype(ms.int32)


def extra_msa_features(extra_msa, extra_has_deletion, extra_deletion_value):
    """AlphaFold's create_extra_msa_feature: one-hot (23 classes) + has_deletion + deletion_value -> [E, N, 25]."""
    one_hot = ops.one_hot(extra_msa.astype(ms.int32), EXTRA_MSA_NUM_CLASSES, Tensor(1.0, ms.float32),
                          Tensor(0.0, ms.float32))
    return ops.concat([one_hot, extra_has_deletion[..., None].astype(ms.float32),
                       extra_deletion_value[..., None].astype(ms.float32)], -1)


class InputEmbedder:
    """Suppl. Alg. 3 (InputEmbedder) with the relative position encoding of Alg. 4-5."""

    def _init_input_embedder(self, ctx, c):
        self.preprocess_1d = Linear(ctx, TARGET_FEAT_DIM, c.msa_channel)
        self.preprocess_msa = Linear(ctx, MSA_FEAT_DIM, c.msa_channel)
        self.left_single = Linear(ctx, TARGET_FEAT_DIM, c.pair_channel)
        self.right_single = Linear(ctx, TARGET_FEAT_DIM, c.pair_channel)
        self.max_relative_feature = int(c.max_relative_feature)
        if self.max_relative_feature:
            self.pair_activiations = Linear(ctx, 2 * self.max_relative_feature + 1, c.pair_channel)

    def embed_inputs(self, target_feat, msa_feat, residue_index):
        """-> msa activations [N_seq, N_res, c_m], pair activations [N_res, N_res, c_z]."""
        # explicit broadcasts: implicit ones keep large CPU workspaces alive (see primitives.expand)
        msa = self.preprocess_msa(msa_feat)
        msa = expand(self.preprocess_1d(target_feat)[None], msa.shape) + msa
        n = target_feat.shape[0]
        shape = (n, n, self.left_single.n_out)
        pair = (expand(self.left_single(target_feat)[:, None], shape)
                + expand(self.right_single(target_feat)[None], shape))
        if self.max_relative_feature:
            # Linear(one_hot(offset)) == row ``offset`` of the weights (exactly), without the [N, N, 65] one-hot
            rel = relative_position_index(residue_index, self.max_relative_feature)
            lin = self.pair_activiations
            pair = pair + (ops.gather(lin.weights, rel, 0) + expand(lin.bias, shape)).astype(pair.dtype)
        return msa, pair


class RecyclingEmbedder:
    """Suppl. Alg. 32 (RecyclingEmbedder): previous pseudo-beta distogram, first MSA row and pair representation."""

    def _init_recycling_embedder(self, ctx, c):
        self.recycle_pos = bool(c.recycle_pos)
        self.recycle_features = bool(c.recycle_features)
        if self.recycle_pos:
            self.prev_pos_bins = (int(c.prev_pos.num_bins), float(c.prev_pos.min_bin), float(c.prev_pos.max_bin))
            self.prev_pos_linear = Linear(ctx, c.prev_pos.num_bins, c.pair_channel)
        if self.recycle_features:
            self.prev_msa_first_row_norm = LayerNorm(ctx, c.msa_channel)
            self.prev_pair_norm = LayerNorm(ctx, c.pair_channel)

    def embed_recycled(self, msa, pair, aatype, prev_pos, prev_msa_first_row, prev_pair):
        if self.recycle_pos:
            num_bins, min_bin, max_bin = self.prev_pos_bins
            dgram = dgram_from_positions(pseudo_beta(aatype, prev_pos.astype(ms.float32)), num_bins, min_bin, max_bin)
            pair = pair + self.prev_pos_linear(dgram).astype(pair.dtype)
        if self.recycle_features:
            first = msa[0:1] + self.prev_msa_first_row_norm(prev_msa_first_row)[None].astype(msa.dtype)
            msa = ops.concat([first, msa[1:]], 0)
            pair = pair + self.prev_pair_norm(prev_pair).astype(pair.dtype)
        return msa, pair


class ExtraMsaEmbedder:
    """Alg. 2 line 13: Linear embedding of the extra-MSA features."""

    def _init_extra_msa_embedder(self, ctx, c):
        self.extra_msa_activations = Linear(ctx, EXTRA_MSA_NUM_CLASSES + 2, c.extra_msa_channel)

    def embed_extra_msa(self, extra_msa, extra_has_deletion, extra_deletion_value):
        return self.extra_msa_activations(extra_msa_features(extra_msa, extra_has_deletion, extra_deletion_value))
