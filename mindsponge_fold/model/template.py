"""Template embedding (Jumper et al. 2021, Suppl. Alg. 2 lines 7-13, Alg. 16 TemplatePairStack, Alg. 17
TemplatePointwiseAttention) and the template torsion-angle rows appended to the MSA (Alg. 2 lines 7-8).

Cells are named after AlphaFold's modules: ``template_embedding`` -> ``single_template_embedding`` ->
(``embedding2d``, ``template_pair_stack`` -> ``layer_stack`` -> ``triangle_attention_starting_node``, ...,
``output_layer_norm``) and ``template_embedding.attention``. The template torsion angles are computed on the host
(:mod:`mindsponge_fold.data.derived_features`) and arrive as features.
"""
from __future__ import annotations

import mindspore as ms
from mindspore import Tensor, ops

from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.model.embedders import dgram_from_positions
from mindsponge_fold.model import chunking
from mindsponge_fold.model.evoformer import TriangleAttention, TriangleMultiplication, Transition
from mindsponge_fold.model.primitives import (Attention, LayerNorm, Linear, Module, SharedDropout,
                                              dropout_broadcast_dim, expand)

N_ATOM, CA_ATOM, C_ATOM = rc.atom_order["N"], rc.atom_order["CA"], rc.atom_order["C"]
TEMPLATE_AATYPE_CLASSES = 22     # 20 amino acids + X + gap
NUM_TORSIONS = 7
# SingleTemplateEmbedding's per-template inputs, in its argument order
PER_TEMPLATE_FEATURES = ("template_aatype", "template_all_atom_positions", "template_all_atom_masks",
                         "template_pseudo_beta", "template_pseudo_beta_mask")


def _one_hot(indices, depth):
    return ops.one_hot(indices.astype(ms.int32), depth, Tensor(1.0, ms.float32), Tensor(0.0, ms.float32))


def _normalize(v, eps=1e-20):
    return v * ops.rsqrt(eps + ops.sum(v * v, -1, keepdim=True))


def backbone_unit_vectors(positions, backbone_mask_2d):
    """Unit vector from residue i to residue j's C-alpha in i's backbone frame, [..., N, N, 3] (zero where masked),
    from atom positions [..., N, 37, 3] (any leading template axes).

    The frame is the one of Suppl. Alg. 21: x along CA->C, N in the xy plane (y > 0), right-handed."""
    ca = positions[..., CA_ATOM, :]
    e0 = _normalize(positions[..., C_ATOM, :] - ca)
    v1 = positions[..., N_ATOM, :] - ca
    e1 = _normalize(v1 - ops.sum(v1 * e0, -1, keepdim=True) * e0)
    e2 = ops.concat([e0[..., 1:2] * e1[..., 2:3] - e0[..., 2:3] * e1[..., 1:2],
                     e0[..., 2:3] * e1[..., 0:1] - e0[..., 0:1] * e1[..., 2:3],
                     e0[..., 0:1] * e1[..., 1:2] - e0[..., 1:2] * e1[..., 0:1]], -1)
    rot = ops.stack([e0, e1, e2], -2)                                        # [..., N, 3 (axis), 3 (xyz)]
    d = ca[..., None, :, :] - ca[..., :, None, :]                            # [..., i, j, xyz]
    local = ops.sum(rot[..., :, None, :, :] * d[..., :, :, None, :], -1)     # [..., i, j, axis]
    inv_dist = ops.rsqrt(1e-6 + ops.sum(local * local, -1, keepdim=True)) * backbone_mask_2d[..., None]
    return local * inv_dist


class TemplatePairBlock(Module):
    """One block of Suppl. Alg. 16 (stacked weights): triangle attention (start, end), triangle multiplication
    (outgoing, incoming), pair transition, each a residual update with shared dropout. Dropout masks are keyed
    ``template_pair_stack/<module>`` and stacked over (template, block), flattened: index ``t * num_block + i``."""

    def __init__(self, ctx, config, channels, stack=()):
        super().__init__(ctx, stack)
        self.triangle_attention_starting_node = TriangleAttention(ctx, config.triangle_attention_starting_node,
                                                                  channels, stack)
        self.triangle_attention_ending_node = TriangleAttention(ctx, config.triangle_attention_ending_node,
                                                                channels, stack)
        self.triangle_multiplication_outgoing = TriangleMultiplication(ctx, config.triangle_multiplication_outgoing,
                                                                       channels, stack)
        self.triangle_multiplication_incoming = TriangleMultiplication(ctx, config.triangle_multiplication_incoming,
                                                                       channels, stack)
        self.pair_transition = Transition(ctx, config.pair_transition, channels, stack)

        def drop(site):
            return SharedDropout(ctx, config[site].dropout_rate, dropout_broadcast_dim(config[site]),
                                 key=f"template_pair_stack/{site}", dims=("N", "N", int(channels)),
                                 stack=("T", int(config.num_block)))

        self.drop_tri_start = drop("triangle_attention_starting_node")
        self.drop_tri_end = drop("triangle_attention_ending_node")
        self.drop_tri_out = drop("triangle_multiplication_outgoing")
        self.drop_tri_in = drop("triangle_multiplication_incoming")
        self.drop_transition = drop("pair_transition")

    def construct(self, act, mask, idx=None, drop=None, drop_idx=None):
        d = idx if drop_idx is None else drop_idx
        act = act + self.drop_tri_start(self.triangle_attention_starting_node(act, mask, idx), drop, d)
        act = act + self.drop_tri_end(self.triangle_attention_ending_node(act, mask, idx), drop, d)
        act = act + self.drop_tri_out(self.triangle_multiplication_outgoing(act, mask, idx), drop, d)
        act = act + self.drop_tri_in(self.triangle_multiplication_incoming(act, mask, idx), drop, d)
        return act + self.drop_transition(self.pair_transition(act, mask, idx), drop, d)


class TemplatePairStack(Module):
    """Suppl. Alg. 16: ``num_block`` TemplatePairBlocks (weights stacked in ``layer_stack``), graph-mode loop.
    ``construct(act, mask, drop, t)``: ``t`` is the template's index into the dropout masks.

    With the host-driven recomputation (``ctx.remat == 'host'``) the two blocks are unrolled instead: the template's
    gradient graph then holds the memory-lean attention kernel, whose backward loops over row blocks, and MindSpore
    2.10's runtime fails on that loop nested in a graph ``while`` loop ("Invalid new ref count", first seen at crop
    128)."""

    def __init__(self, ctx, config, channels):
        super().__init__(ctx)
        self.num_block = int(config.num_block)
        self.layer_stack = TemplatePairBlock(ctx, config, channels, stack=(self.num_block,))
        self.unroll = ctx.remat == "host" or self.num_block == 1     # a one-pass while loop only costs compile time
        if ctx.remat == "graph":
            self.layer_stack.recompute()

    def construct(self, act, mask, drop=None, t=None):
        if self.unroll:
            for k in range(self.num_block):
                i = Tensor(k, ms.int32)
                act = self.layer_stack(act, mask, i, drop, None if t is None else t * self.num_block + i)
            return act
        i = Tensor(0, ms.int32)
        while i < self.num_block:
            act = self.layer_stack(act, mask, i, drop, None if t is None else t * self.num_block + i)
            i = i + 1
        return act


class SingleTemplateEmbedding(Module):
    """Pair features of one template (Alg. 2 line 9: distogram, masks, residue types, optional unit vectors),
    embedded and refined by the template pair stack (line 11)."""

    def __init__(self, ctx, config):
        super().__init__(ctx)
        channels = int(config.template_pair_stack.triangle_attention_ending_node.value_dim)
        dg = config.dgram_features
        self.dgram = (int(dg.num_bins), float(dg.min_bin), float(dg.max_bin))
        self.use_unit_vector = bool(config.use_template_unit_vector)
        num_features = self.dgram[0] + 1 + 2 * TEMPLATE_AATYPE_CLASSES + 3 + 1
        self.embedding2d = Linear(ctx, num_features, channels, initializer="relu")
        self.template_pair_stack = TemplatePairStack(ctx, config.template_pair_stack, channels)
        self.output_layer_norm = LayerNorm(ctx, channels)

    def pair_features(self, aatype, positions, atom_mask, pseudo_beta, pseudo_beta_mask):
        """Pair features (Alg. 2 line 9) of one template (inputs [N, ...]) or of a stack of them (a leading [T]
        axis on every input), embedded by ``embedding2d`` -> [..., N, N, c_t]."""
        n = aatype.shape[-1]
        pair_shape = tuple(aatype.shape) + (n,)
        num_bins, min_bin, max_bin = self.dgram
        pb_mask_2d = pseudo_beta_mask[..., :, None] * pseudo_beta_mask[..., None, :]
        dgram = dgram_from_positions(pseudo_beta, num_bins, min_bin, max_bin)
        aa = _one_hot(aatype, TEMPLATE_AATYPE_CLASSES)
        aa_j = ops.broadcast_to(aa[..., None, :, :], pair_shape + (TEMPLATE_AATYPE_CLASSES,))
        aa_i = ops.broadcast_to(aa[..., :, None, :], pair_shape + (TEMPLATE_AATYPE_CLASSES,))
        backbone = atom_mask[..., N_ATOM] * atom_mask[..., CA_ATOM] * atom_mask[..., C_ATOM]
        bb_mask_2d = backbone[..., :, None] * backbone[..., None, :]
        if self.use_unit_vector:
            unit = backbone_unit_vectors(positions, bb_mask_2d)
        else:
            unit = ops.zeros(pair_shape + (3,), ms.float32)
        act = ops.concat([dgram, pb_mask_2d[..., None], aa_j, aa_i, unit, bb_mask_2d[..., None]], -1)
        act = act * expand(bb_mask_2d[..., None], act.shape)
        return self.embedding2d(act)

    def refine(self, act, mask_2d, drop=None, t=None):
        """The template pair stack (Alg. 2 line 11) and the output layer norm on embedded features [N, N, c_t]."""
        return self.output_layer_norm(self.template_pair_stack(act, mask_2d, drop, t))

    def construct(self, aatype, positions, atom_mask, pseudo_beta, pseudo_beta_mask, mask_2d, drop=None, t=None):
        return self.refine(self.pair_features(aatype, positions, atom_mask, pseudo_beta, pseudo_beta_mask),
                           mask_2d, drop, t)


class TemplateEmbedding(Module):
    """Alg. 2 lines 9-13 with Alg. 17 (TemplatePointwiseAttention): every template embedded by the same
    SingleTemplateEmbedding (:meth:`embed_template` one at a time; :meth:`embed_templates` all of them),
    then attended to from each query pair entry (:meth:`attend`). ``construct`` returns the update of the pair
    representation [N_res, N_res, c_z] (zero when no template exists). ``batch`` holds the template features
    (``template_aatype`` ...) of one recycling iteration."""

    def __init__(self, ctx, config, pair_channel):
        super().__init__(ctx)
        self.num_templates = int(config.max_templates)
        self.channels = int(config.template_pair_stack.triangle_attention_ending_node.value_dim)
        self.single_template_embedding = SingleTemplateEmbedding(ctx, config)
        att = config.attention
        self.attention = Attention(ctx, pair_channel, self.channels, att.num_head, pair_channel,
                                   key_dim=att.key_dim, value_dim=att.value_dim, gating=att.gating)

    def embed_template(self, batch, t, mask_2d, drop=None):
        """Template ``t`` (an int32 Tensor) -> its embedding [N, N, c_t]."""
        return self.single_template_embedding(*[ops.gather(batch[k], t, 0) for k in PER_TEMPLATE_FEATURES],
                                              mask_2d, drop, t)

    def embed_templates(self, batch, mask_2d, drop=None):
        """Every template's embedding, stacked [N, N, T, c_t]: the (cheap) pair features of all T templates in one call
        (a leading template axis), then the template pair stack over them in a graph-mode while loop (compiled once;
        one copy of the feature graph instead of one per template compiles ~1 s faster). With the
        features inside the loop too (each template's features gathered by the loop index), MindSpore 2.10 kept
        0.63 GiB more allocated after compiling the full-width iteration at N_res 256 (CPU); unrolling the whole
        embedding instead compiled 2.8 s slower."""
        num_t = batch["template_mask"].shape[0]
        n = mask_2d.shape[0]
        ste = self.single_template_embedding
        feats = ste.pair_features(*[batch[k] for k in PER_TEMPLATE_FEATURES])          # [T, N, N, c_t]
        stacked = chunking.zeros_from(mask_2d, (n, n, num_t, self.channels), self.dtype)
        t = Tensor(0, ms.int32)
        while t < num_t:
            emb = ste.refine(ops.gather(feats, t, 0), mask_2d, drop, t)
            select = _one_hot(t, num_t).astype(stacked.dtype).reshape(1, 1, num_t, 1)
            stacked = stacked + expand(select, stacked.shape) * expand(emb[:, :, None, :].astype(stacked.dtype),
                                                                      stacked.shape)
            t = t + 1
        return stacked

    def attend(self, query_embedding, stacked, template_mask):
        """Alg. 17: query pair [N, N, c_z] attends over the stacked template embeddings -> pair update."""
        n, _, c_z = query_embedding.shape
        num_t, c_t = stacked.shape[2], stacked.shape[3]
        out = self.attention(query_embedding.reshape(n * n, 1, c_z), stacked.reshape(n * n, num_t, c_t),
                             template_mask.reshape(1, num_t))
        any_template = (template_mask.sum() > 0).astype(out.dtype)
        return out.reshape(n, n, c_z) * any_template

    def construct(self, query_embedding, batch, mask_2d, drop=None):
        return self.attend(query_embedding, self.embed_templates(batch, mask_2d, drop), batch["template_mask"])


class TemplateTorsionEmbedder:
    """Mixin of the trunk: MSA rows from the templates' residue types and torsion angles (Alg. 2 lines 7-8).

    Creates the trunk's ``template_single_embedding`` and ``template_projection``."""

    def _init_template_torsion_embedder(self, ctx, c):
        num_features = TEMPLATE_AATYPE_CLASSES + 4 * NUM_TORSIONS + NUM_TORSIONS        # 57
        self.template_single_embedding = Linear(ctx, num_features, c.msa_channel, initializer="relu")
        self.template_projection = Linear(ctx, c.msa_channel, c.msa_channel, initializer="relu")

    def embed_template_rows(self, aatype, sin_cos, alt_sin_cos, torsion_mask):
        """aatype [T, N], (alt_)sin_cos [T, N, 7, 2], torsion_mask [T, N, 7] -> rows [T, N, c_m] (their MSA mask is
        the psi-angle mask, as in AlphaFold: see the trunk's ``masks``)."""
        num_t, n = aatype.shape
        feats = ops.concat([_one_hot(aatype, TEMPLATE_AATYPE_CLASSES),
                            sin_cos.reshape(num_t, n, 2 * NUM_TORSIONS).astype(ms.float32),
                            alt_sin_cos.reshape(num_t, n, 2 * NUM_TORSIONS).astype(ms.float32),
                            torsion_mask.astype(ms.float32)], -1)
        rows = self.template_projection(ops.relu(self.template_single_embedding(feats)))
        return rows
