"""The AlphaFold 2 trunk: embeddings, templates, extra-MSA stack and Evoformer (Jumper et al. 2021, Suppl. Alg. 2
lines 5-18), AlphaFold's ``EmbeddingsAndEvoformer``.

Used as attribute ``evoformer`` of AlphaFoldIteration, so parameter paths are AlphaFold's
(``evoformer/preprocess_1d//weights``, ``evoformer/evoformer_iteration/...`` with the stack axis first, ...).
"""
from __future__ import annotations

import mindspore as ms
from mindspore import nn, ops

from mindsponge_fold.model.embedders import ExtraMsaEmbedder, InputEmbedder, RecyclingEmbedder
from mindsponge_fold.model.evoformer import make_stack_block, run_stack
from mindsponge_fold.model.primitives import Linear, ModelContext
from mindsponge_fold.model.template import TemplateEmbedding, TemplateTorsionEmbedder

# Features the trunk reads (one recycling iteration, no batch axis).
TRUNK_FEATURES = ("aatype", "residue_index", "seq_mask", "target_feat", "msa_feat", "msa_mask",
                  "extra_msa", "extra_msa_mask", "extra_has_deletion", "extra_deletion_value")
TEMPLATE_FEATURES = ("template_aatype", "template_all_atom_positions", "template_all_atom_masks", "template_mask",
                     "template_pseudo_beta", "template_pseudo_beta_mask")
TEMPLATE_TORSION_FEATURES = ("template_torsion_angles_sin_cos", "template_alt_torsion_angles_sin_cos",
                             "template_torsion_angles_mask")


class EmbeddingsAndEvoformer(nn.Cell, InputEmbedder, RecyclingEmbedder, ExtraMsaEmbedder, TemplateTorsionEmbedder):
    """Embeds one recycling iteration's features and runs the extra-MSA stack and the Evoformer.

    ``construct(batch, prev_pos, prev_msa_first_row, prev_pair, drop=None)`` -> dict with 'single' [N, c_s], 'pair'
    [N, N, c_z], 'msa' [N_seq, N, c_m] (cluster rows only) and 'msa_first_row' [N, c_m], all float32.
    ``batch``: Tensors keyed by AlphaFold feature names (:meth:`required_features`), incl. the host-derived template
    torsion features. A top-level graph input dict must be wrapped in ``mindspore.mutable`` (otherwise graph mode
    treats its tensors as constants: a recompile for every new batch). ``drop``: dropout masks (training only).

    The pieces (:meth:`masks`, ``template_embedding.embed_templates``, :meth:`embed`, the stacked blocks,
    :meth:`finish`) are also run one by one by the host-driven recomputation (:mod:`mindsponge_fold.train.remat`).
    """

    output_names = ("single", "pair", "msa", "msa_first_row")     # the keys of construct's dict (TupleOutput order)

    def __init__(self, model_config, ctx: ModelContext):
        super().__init__()
        c = model_config.embeddings_and_evoformer
        self.dtype = ctx.dtype
        self._init_input_embedder(ctx, c)
        self._init_recycling_embedder(ctx, c)
        self.template_enabled = bool(c.template.enabled)
        self.embed_torsion_angles = self.template_enabled and bool(c.template.embed_torsion_angles)
        if self.template_enabled:
            self.template_embedding = TemplateEmbedding(ctx, c.template, c.pair_channel)
        self._init_extra_msa_embedder(ctx, c)
        self.num_extra_block = int(c.extra_msa_stack_num_block)
        self.extra_msa_stack = make_stack_block(ctx, model_config, True)
        if self.embed_torsion_angles:
            self._init_template_torsion_embedder(ctx, c)
        self.num_block = int(c.evoformer_num_block)
        self.evoformer_iteration = make_stack_block(ctx, model_config, False)
        self.single_activations = Linear(ctx, c.msa_channel, c.seq_channel)

    def required_features(self) -> tuple:
        names = TRUNK_FEATURES
        if self.template_enabled:
            names = names + TEMPLATE_FEATURES
        if self.embed_torsion_angles:
            names = names + TEMPLATE_TORSION_FEATURES
        return names

    def masks(self, batch):
        """(MSA mask incl. the template torsion rows [S, N], extra-MSA mask [E, N], pair mask [N, N]) in the compute
        dtype."""
        seq_mask = batch["seq_mask"]
        mask_2d = (seq_mask[:, None] * seq_mask[None, :]).astype(self.dtype)
        msa_mask = batch["msa_mask"].astype(self.dtype)
        if self.embed_torsion_angles:
            row_mask = batch["template_torsion_angles_mask"][:, :, 2]       # the psi mask, as AlphaFold
            msa_mask = ops.concat([msa_mask, row_mask.astype(self.dtype)], 0)
        return msa_mask, batch["extra_msa_mask"].astype(self.dtype), mask_2d

    def embed(self, batch, prev_pos, prev_msa_first_row, prev_pair, templates=None):
        """Alg. 2 lines 5-13 around the template pair stacks: input and recycling embeddings, the template pointwise
        attention over ``templates`` (the stacked embeddings [N, N, T, c_t]), the extra-MSA embedding and the
        template torsion rows appended to the MSA. Returns (msa [S, N, c_m], pair [N, N, c_z], extra [E, N, c_e])."""
        msa, pair = self.embed_inputs(batch["target_feat"], batch["msa_feat"], batch["residue_index"])
        msa, pair = self.embed_recycled(msa, pair, batch["aatype"], prev_pos, prev_msa_first_row, prev_pair)
        if self.template_enabled:
            pair = pair + self.template_embedding.attend(pair, templates, batch["template_mask"]).astype(pair.dtype)
        extra = self.embed_extra_msa(batch["extra_msa"], batch["extra_has_deletion"], batch["extra_deletion_value"])
        if self.embed_torsion_angles:
            rows = self.embed_template_rows(
                batch["template_aatype"], batch["template_torsion_angles_sin_cos"],
                batch["template_alt_torsion_angles_sin_cos"], batch["template_torsion_angles_mask"])
            msa = ops.concat([msa, rows.astype(msa.dtype)], 0)
        return msa, pair, extra

    def finish(self, msa, pair, num_seq: int):
        """Alg. 2 line 18 and the representations handed on: float32 whatever the compute dtype (AlphaFold's
        bfloat16_output=False)."""
        first_row = msa[0]
        return {
            "single": self.single_activations(first_row).astype(ms.float32),
            "pair": pair.astype(ms.float32),
            "msa": msa[:num_seq].astype(ms.float32),
            "msa_first_row": first_row.astype(ms.float32),
        }

    def construct(self, batch, prev_pos, prev_msa_first_row, prev_pair, drop=None):
        msa_mask, extra_mask, mask_2d = self.masks(batch)
        templates = None
        if self.template_enabled:
            templates = self.template_embedding.embed_templates(batch, mask_2d, drop)
        msa, pair, extra = self.embed(batch, prev_pos, prev_msa_first_row, prev_pair, templates)
        _, pair = run_stack(self.extra_msa_stack, self.num_extra_block, extra, pair, extra_mask, mask_2d, drop)
        msa, pair = run_stack(self.evoformer_iteration, self.num_block, msa, pair, msa_mask, mask_2d, drop)
        return self.finish(msa, pair, batch["msa_feat"].shape[0])
