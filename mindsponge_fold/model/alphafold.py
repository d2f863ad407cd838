"""One AlphaFold 2 iteration as a single MindSpore Cell (Suppl. Alg. 2, one pass of the recycling loop).

``AlphaFoldIteration.construct(batch, prev_pos, prev_msa_first_row, prev_pair)`` embeds the features and the
recycled outputs, runs the template, extra-MSA and Evoformer stacks (:mod:`trunk`), the structure module and every
head configured with a non-zero weight (AlphaFold does not instantiate zero-weight heads: e.g. the PAE head exists
only in the ``_ptm`` models). It returns a flat dict keyed by AlphaFold's output names
(``representations/pair``, ``structure_module/traj``, ``distogram/logits``, ...; see :mod:`outputs`).

Recycling runs on the host (:mod:`runner`): one compiled call per iteration, previous outputs passed back in. The
same Cell serves inference (``set_train(False)``) and training (``set_train(True)``: no inference chunking; dropout
masks passed as ``drop``; losses in :mod:`train.losses`).
"""
from __future__ import annotations

from mindspore import nn

from mindsponge_fold.model.heads import (DistogramHead, ExperimentallyResolvedHead, MaskedMsaHead,
                                         PredictedAlignedErrorHead, PredictedLDDTHead)
from mindsponge_fold.model.primitives import ModelContext
from mindsponge_fold.model.structure import StructureModule
from mindsponge_fold.model.trunk import EmbeddingsAndEvoformer

MSA_ROWS_SAVED = 8
BASE_OUTPUTS = (
    "representations/single", "representations/pair", "representations/msa_first_row",
    "representations/structure_module", "representations/msa_rows0to7", "structure_module/traj",
    "structure_module/final_affines", "structure_module/sidechains/frames", "structure_module/sidechains/atom_pos",
    "structure_module/sidechains/angles_sin_cos", "structure_module/sidechains/unnormalized_angles_sin_cos",
    "structure_module/final_atom14_positions", "structure_module/final_atom14_mask",
    "structure_module/final_atom_positions", "structure_module/final_atom_mask",
)


class AlphaFoldIteration(nn.Cell):
    """AlphaFold's ``AlphaFoldIteration``: trunk + structure module + heads. Attribute names are AlphaFold's
    module names, which makes the parameter names map to the official ones (see :mod:`params`)."""

    def __init__(self, cfg, ctx: ModelContext | None = None):
        super().__init__()
        ctx = ctx or ModelContext.from_config(cfg)
        mc = cfg.model
        evo = mc.embeddings_and_evoformer
        heads = mc.heads
        self.evoformer = EmbeddingsAndEvoformer(mc, ctx)
        self.structure_module = StructureModule(heads.structure_module, ctx, evo.seq_channel, evo.pair_channel)
        self.has_distogram = heads.distogram.weight > 0
        self.has_masked_msa = heads.masked_msa.weight > 0
        self.has_plddt = heads.predicted_lddt.weight > 0
        self.has_pae = heads.predicted_aligned_error.weight > 0
        self.has_resolved = heads.experimentally_resolved.weight > 0
        if self.has_distogram:
            self.distogram_head = DistogramHead(heads.distogram, ctx, evo.pair_channel)
        if self.has_masked_msa:
            self.masked_msa_head = MaskedMsaHead(heads.masked_msa, ctx, evo.msa_channel)
        if self.has_plddt:
            self.predicted_lddt_head = PredictedLDDTHead(heads.predicted_lddt, ctx, evo.seq_channel)
        if self.has_pae:
            self.predicted_aligned_error_head = PredictedAlignedErrorHead(heads.predicted_aligned_error, ctx,
                                                                          evo.pair_channel)
        if self.has_resolved:
            self.experimentally_resolved_head = ExperimentallyResolvedHead(heads.experimentally_resolved, ctx,
                                                                           evo.seq_channel)
        heads_out = (("distogram/logits", "distogram/bin_edges") * self.has_distogram
                     + ("masked_msa/logits",) * self.has_masked_msa
                     + ("predicted_lddt/logits",) * self.has_plddt
                     + ("predicted_aligned_error/logits", "predicted_aligned_error/breaks") * self.has_pae
                     + ("experimentally_resolved/logits",) * self.has_resolved)
        self.output_names = BASE_OUTPUTS + heads_out

    def construct(self, batch, prev_pos, prev_msa_first_row, prev_pair, drop=None):
        """``drop``: the dropout masks of a training step, or of an inference iteration with ``eval_dropout``
        (:mod:`mindsponge_fold.model.dropout_masks`); None = no dropout."""
        return self.heads_outputs(self.evoformer(batch, prev_pos, prev_msa_first_row, prev_pair, drop), batch, drop)

    def heads_outputs(self, rep, batch, drop=None):
        """Structure module and heads on the trunk's representations -> the flat output dict."""
        single, pair, msa = rep["single"], rep["pair"], rep["msa"]
        sm = self.structure_module(single, pair, batch, drop)
        out = {
            "representations/single": single,
            "representations/pair": pair,
            "representations/msa_first_row": rep["msa_first_row"],
            "representations/structure_module": sm["act"],
            "representations/msa_rows0to7": msa[:MSA_ROWS_SAVED],
            "structure_module/traj": sm["traj"],
            "structure_module/final_affines": sm["final_affines"],
            "structure_module/sidechains/frames": sm["sidechains/frames"],
            "structure_module/sidechains/atom_pos": sm["sidechains/atom_pos"],
            "structure_module/sidechains/angles_sin_cos": sm["sidechains/angles_sin_cos"],
            "structure_module/sidechains/unnormalized_angles_sin_cos": sm["sidechains/unnormalized_angles_sin_cos"],
            "structure_module/final_atom14_positions": sm["final_atom14_positions"],
            "structure_module/final_atom14_mask": sm["final_atom14_mask"],
            "structure_module/final_atom_positions": sm["final_atom_positions"],
            "structure_module/final_atom_mask": sm["final_atom_mask"],
        }
        if self.has_distogram:
            d = self.distogram_head(pair)
            out["distogram/logits"] = d["logits"]
            out["distogram/bin_edges"] = d["bin_edges"]
        if self.has_masked_msa:
            out["masked_msa/logits"] = self.masked_msa_head(msa)["logits"]
        if self.has_plddt:
            out["predicted_lddt/logits"] = self.predicted_lddt_head(sm["act"])["logits"]
        if self.has_pae:
            p = self.predicted_aligned_error_head(pair)
            out["predicted_aligned_error/logits"] = p["logits"]
            out["predicted_aligned_error/breaks"] = p["breaks"]
        if self.has_resolved:
            out["experimentally_resolved/logits"] = self.experimentally_resolved_head(single)["logits"]
        return out


class TupleOutput(nn.Cell):
    """Graph entry point: the same network, outputs as a tuple in ``model.output_names`` order.

    A dict with string keys as the OUTPUT of a top-level graph becomes a Python-executed node (PyExecute) in
    MindSpore 2.10, which the on-disk compile cache cannot export; inside the graph dicts are fine, and a dict INPUT
    passed as ``ms.mutable`` is fine too. Use :func:`as_dict` to get the dict back on the host. ``drop``: dropout
    masks (inference with ``eval_dropout``, an ``ms.mutable`` dict); without it the graph is the dropout-free one."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.output_names = model.output_names

    def construct(self, batch, prev_pos, prev_msa_first_row, prev_pair, drop=None):
        out = self.model(batch, prev_pos, prev_msa_first_row, prev_pair, drop)
        return tuple([out[k] for k in self.output_names])

    def as_dict(self, values) -> dict:
        return dict(zip(self.output_names, values))


def build_model(cfg, ctx: ModelContext | None = None) -> AlphaFoldIteration:
    """The network for a config (preset/overrides/AlphaFold config), with fresh AlphaFold-style initialisation."""
    return AlphaFoldIteration(cfg, ctx)
