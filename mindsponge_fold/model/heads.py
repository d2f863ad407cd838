"""AlphaFold's prediction heads (Suppl. 1.9.6-1.9.10), float32 per the precision policy (family 'heads').

Each head is a Cell named like AlphaFold's haiku module's sub-modules (``half_logits``, ``logits``,
``input_layer_norm``, ``act_0``, ...), takes the representation it reads and returns a dict with its logits; the
binned heads also return their bin edges / breaks (constants, also available as numpy attributes for post-processing).
Masking and losses live elsewhere.
"""
import mindspore as ms
import numpy as np
from mindspore import Tensor, ops

from mindsponge_fold.model import kernels
from mindsponge_fold.model.primitives import LayerNorm, Linear, Module

F32 = ms.float32


def _head_ctx(ctx):
    return ctx.family("heads")


class DistogramHead(Module):
    """Suppl. 1.9.8: symmetrised distogram logits [N, N, num_bins] from the pair representation."""

    def __init__(self, config, ctx, pair_channel):
        ctx = _head_ctx(ctx)
        super().__init__(ctx)
        self.half_logits = Linear(ctx, pair_channel, config.num_bins, "final")
        self.bin_edges_np = np.linspace(config.first_break, config.last_break, config.num_bins - 1,
                                        dtype=np.float32)
        self.bin_edges = Tensor(self.bin_edges_np)

    def construct(self, pair):
        half = self.half_logits(pair.astype(self.dtype)).astype(F32)
        return {"logits": half + kernels.transpose(half, (1, 0, 2)), "bin_edges": self.bin_edges}


class MaskedMsaHead(Module):
    """Suppl. 1.9.9: logits over the 23 MSA classes [N_seq, N_res, 23] from the MSA representation."""

    def __init__(self, config, ctx, msa_channel):
        ctx = _head_ctx(ctx)
        super().__init__(ctx)
        self.logits = Linear(ctx, msa_channel, config.num_output, "final")

    def construct(self, msa):
        return {"logits": self.logits(msa.astype(self.dtype)).astype(F32)}


class PredictedLDDTHead(Module):
    """Suppl. 1.9.6 / Alg. 29: binned lDDT-Ca logits [N, num_bins] from the structure module's final activation."""

    def __init__(self, config, ctx, seq_channel):
        ctx = _head_ctx(ctx)
        super().__init__(ctx)
        c = config.num_channels
        self.input_layer_norm = LayerNorm(ctx, seq_channel)
        self.act_0 = Linear(ctx, seq_channel, c, "relu")
        self.act_1 = Linear(ctx, c, c, "relu")
        self.logits = Linear(ctx, c, config.num_bins, "final")

    def construct(self, structure_module_act):
        act = self.input_layer_norm(structure_module_act.astype(self.dtype))
        act = ops.relu(self.act_0(act))
        act = ops.relu(self.act_1(act))
        return {"logits": self.logits(act).astype(F32)}


class PredictedAlignedErrorHead(Module):
    """Suppl. 1.9.7: binned aligned-error logits [N, N, num_bins] from the pair representation (pTM models)."""

    def __init__(self, config, ctx, pair_channel):
        ctx = _head_ctx(ctx)
        super().__init__(ctx)
        self.logits = Linear(ctx, pair_channel, config.num_bins, "final")
        self.breaks_np = np.linspace(0.0, config.max_error_bin, config.num_bins - 1, dtype=np.float32)
        self.breaks = Tensor(self.breaks_np)

    def construct(self, pair):
        return {"logits": self.logits(pair.astype(self.dtype)).astype(F32), "breaks": self.breaks}


class ExperimentallyResolvedHead(Module):
    """Suppl. 1.9.10: per-atom37 logits [N, 37] that the atom is resolved experimentally, from the single
    representation."""

    def __init__(self, config, ctx, seq_channel):
        ctx = _head_ctx(ctx)
        super().__init__(ctx)
        del config  # no settings besides the loss ones
        self.logits = Linear(ctx, seq_channel, 37, "final")

    def construct(self, single):
        return {"logits": self.logits(single.astype(self.dtype)).astype(F32)}
