"""Host-driven recomputation of the trunk in the gradient iteration (Suppl. 1.11.8, gradient checkpointing).

``Cell.recompute()`` frees a block's activations on Ascend and GPU, but on MindSpore 2.10's CPU backend the gradient
graph keeps them anyway (scripts/bench_remat_cpu.py): memory then grows by ~1 GiB per Evoformer block at crop 64.
:class:`HostRematGrad` computes the same gradient with the recomputation driven from the host, one compiled graph per
segment of the network:

* forward: the template embeddings (one template at a time), the embeddings, then every extra-MSA and Evoformer
  block, each a compiled no-gradient graph whose input is kept (the block inputs are all that stays in memory);
* the tail (single projection, structure module, heads, losses) as one gradient graph: loss, its terms, the
  gradients of its weights and of its inputs (msa, pair);
* backward, from the last block to the first: each block's forward is recomputed inside its own vector-Jacobian
  graph (the gradient of ``<block(x), cotangent>``), which returns the gradients of the block's weights and inputs;
  then the embeddings' and each template's.

The stacked weights of a block stack are used through a single-layer twin of the block (same Cells, ``stack=()``):
before block i runs, a compiled loader copies layer i of every stacked weight into the twin, and the twin's weight
gradients are written (in place, by a compiled store) into row i of a buffer shaped like the stacked weight.
Dropout masks are inputs (:mod:`mindsponge_fold.model.dropout_masks`), so the recomputed forward applies exactly the
masks of the original one.

Peak memory: the saved block inputs (per Evoformer block one MSA and one pair activation) plus ONE block's
gradient graph, instead of every block's activations. Everything here runs the model's own Cells and methods
(``EmbeddingsAndEvoformer.masks/embed/finish``, ``TemplateEmbedding.embed_template/attend``, the stacked
``EvoformerIteration``, ``AlphaFoldIteration.heads_outputs``, ``AlphaFoldLoss``): no copy of the network.
"""
from __future__ import annotations

import resource
import time

import mindspore as ms
from mindspore import nn, ops

from mindsponge_fold.model.evoformer import make_stack_block
from mindsponge_fold.model.params import model_parameters

F32 = ms.float32
_load = ops.MultitypeFuncGraph("load_layer")


@_load.register("Tensor", "Tensor", "Tensor")
def _load_layer(i, stacked, single):
    return ops.assign(single, ops.gather(stacked, i, 0))


def _dot(x, cotangent):
    """<x, cotangent> in float32: its gradient with respect to whatever made x is the vector-Jacobian product."""
    return (x.astype(F32) * cotangent.astype(F32)).sum()


class LayerLoader(nn.Cell):
    """``construct(i)``: copy layer ``i`` of every stacked weight into the single-layer twin's weight."""

    def __init__(self, stacked, single):
        super().__init__()
        self.stacked = ms.ParameterTuple(stacked)
        self.single = ms.ParameterTuple(single)
        self.hyper_map = ops.HyperMap()

    def construct(self, i):
        return self.hyper_map(ops.partial(_load, i), self.stacked, self.single)


_store = ops.MultitypeFuncGraph("store_layer")


@_store.register("Tensor", "Tensor", "Tensor")
def _store_layer(i, buffer, grad):
    return ops.scatter_update(buffer, i.reshape((1,)), grad.expand_dims(0))


class LayerGradStore(nn.Cell):
    """``construct(i, grads)``: write one layer's weight gradients into row ``i`` of stacked gradient buffers
    (Parameters shaped like the stacked weights, updated in place: no per-layer list and no stacking copy)."""

    def __init__(self, stacked, prefix):
        super().__init__()
        self.buffers = ms.ParameterTuple([ms.Parameter(ops.zeros(p.shape, p.dtype), name=f"{prefix}.{k}",
                                                       requires_grad=False) for k, p in enumerate(stacked)])
        self.hyper_map = ops.HyperMap()

    def construct(self, i, grads):
        return self.hyper_map(ops.partial(_store, i), self.buffers, grads)


class BlockForward(nn.Cell):
    def __init__(self, block):
        super().__init__()
        self.block = block

    def construct(self, a, b, mask_a, mask_b, drop, i):
        return self.block(a, b, mask_a, mask_b, None, drop, i)


class BlockCotangent(nn.Cell):
    def __init__(self, block):
        super().__init__()
        self.block = block

    def construct(self, a, b, mask_a, mask_b, drop, i, d_a, d_b):
        a, b = self.block(a, b, mask_a, mask_b, None, drop, i)
        return _dot(a, d_a) + _dot(b, d_b)


class TemplateForward(nn.Cell):
    def __init__(self, trunk):
        super().__init__()
        self.trunk = trunk

    def construct(self, batch, t, drop):
        _, _, mask_2d = self.trunk.masks(batch)
        return self.trunk.template_embedding.embed_template(batch, t, mask_2d, drop)


class TemplateCotangent(nn.Cell):
    def __init__(self, trunk):
        super().__init__()
        self.trunk = trunk

    def construct(self, batch, t, drop, d_emb):
        _, _, mask_2d = self.trunk.masks(batch)
        return _dot(self.trunk.template_embedding.embed_template(batch, t, mask_2d, drop), d_emb)


class EmbedForward(nn.Cell):
    def __init__(self, trunk):
        super().__init__()
        self.trunk = trunk

    def construct(self, batch, prev_pos, prev_msa_first_row, prev_pair, templates):
        msa_mask, extra_mask, mask_2d = self.trunk.masks(batch)
        msa, pair, extra = self.trunk.embed(batch, prev_pos, prev_msa_first_row, prev_pair, templates)
        return msa, pair, extra, msa_mask, extra_mask, mask_2d


class EmbedCotangent(nn.Cell):
    def __init__(self, trunk):
        super().__init__()
        self.trunk = trunk

    def construct(self, templates, batch, prev_pos, prev_msa_first_row, prev_pair, d_msa, d_pair, d_extra):
        msa, pair, extra = self.trunk.embed(batch, prev_pos, prev_msa_first_row, prev_pair, templates)
        return _dot(msa, d_msa) + _dot(pair, d_pair) + _dot(extra, d_extra)


class TailLoss(nn.Cell):
    """Single projection, structure module, heads and losses on the Evoformer's output: (loss x scale, loss,
    *terms), as :class:`mindsponge_fold.train.step.LossNet` returns them."""

    def __init__(self, model, loss, term_names):
        super().__init__()
        self.model = model
        self.loss = loss
        self.term_names = tuple(term_names)

    def construct(self, msa, pair, batch, drop, loss_scale):
        rep = self.model.evoformer.finish(msa, pair, batch["msa_feat"].shape[0])
        out = self.model.heads_outputs(rep, batch, drop)
        total, terms = self.loss(out, batch)
        return (total * loss_scale, total) + tuple([terms[k] for k in self.term_names])


class VJP(nn.Cell):
    """Gradient of a scalar Cell with respect to the inputs at ``positions`` and ``weights``; returns
    ``(value, input grads, weight grads)`` (``has_aux``: the Cell returns (scalar, *aux) and value is that tuple)."""

    def __init__(self, net, weights, positions=None, has_aux=False):
        super().__init__()
        self.net = net
        self.weights = ms.ParameterTuple(weights)
        self.num_positions = 0 if positions is None else len(positions)
        self.grad = ms.value_and_grad(net, grad_position=positions, weights=self.weights, has_aux=has_aux)

    def construct(self, *args):
        value, grads = self.grad(*args)
        if self.num_positions == 1:             # value_and_grad returns a single input's gradient bare
            return value, (grads[0],), grads[1]
        if self.num_positions:
            return value, grads[0], grads[1]
        return value, (), grads


def _ids(params) -> set:
    return {id(p) for p in params}


class HostRematGrad:
    """The gradient iteration with host-driven recomputation; the same contract as
    :class:`mindsponge_fold.train.step.GradStep` (``__call__(batch, prev_pos, prev_msa_first_row, prev_pair,
    loss_scale, drop) -> (loss, terms, grad norm, clipped grads)``, grads in ``params`` order), and the same gradient.

    ``model``: the training AlphaFoldIteration (``set_train(True)``); ``finish``: the GradStep's unscale/clip Cell;
    ``ctx``: the model's context (the twins are built with it).

    ``profile``: set it to a dict and every call adds the wall time of each segment to it (seconds, keyed by segment:
    template/embed/extra_msa_stack/evoformer forward, the tail's loss and gradient, the stacks' and the embedding's
    recomputation + backward, the final unscale/clip) and the process's peak RSS after it (``peak_rss_gib_after/*``),
    synchronising the device between segments; None (default) adds no synchronisation."""

    profile = None

    def __init__(self, model, loss, term_names, params, finish, model_config, ctx):
        trunk = model.evoformer
        self.trunk, self.finish = trunk, finish
        self.params = list(params)
        self.stacks = []
        for stacked, is_extra in ((trunk.extra_msa_stack, True), (trunk.evoformer_iteration, False)):
            twin = make_stack_block(ctx, model_config, is_extra, stack=())
            twin.set_train(True)
            pairs = self._pair_weights(stacked, twin)
            twin_weights = [t for _, t in pairs]
            self.stacks.append({
                "num": int(trunk.num_extra_block if is_extra else trunk.num_block),
                "load": LayerLoader([s for s, _ in pairs], twin_weights),
                "forward": BlockForward(twin),
                "vjp": VJP(BlockCotangent(twin), twin_weights, positions=(0, 1)),
                "stacked": [s for s, _ in pairs],
                "store": LayerGradStore([s for s, _ in pairs], f"remat_grad_{'extra' if is_extra else 'evo'}"),
            })
        self.templates = None
        owned = _ids(p for st in self.stacks for p in st["stacked"])
        if trunk.template_enabled:
            te = trunk.template_embedding
            ste = list(te.single_template_embedding.trainable_params())
            self.templates = {"forward": TemplateForward(trunk), "vjp": VJP(TemplateCotangent(trunk), ste),
                              "weights": ste}
            owned |= _ids(ste)
        trunk_ids = _ids(trunk.trainable_params())
        tail = [p for p in self.params if id(p) not in trunk_ids] + list(trunk.single_activations.trainable_params())
        owned |= _ids(tail)
        embed = [p for p in trunk.trainable_params() if id(p) not in owned]
        self.embed_forward = EmbedForward(trunk)
        self.embed_vjp = VJP(EmbedCotangent(trunk), embed, positions=(0,) if self.templates else None)
        self.embed_weights = embed
        self.tail_weights = tail
        self.tail_vjp = VJP(TailLoss(model, loss, term_names), tail, positions=(0, 1), has_aux=True)
        covered = _ids(embed) | _ids(tail) | owned
        missing = [p.name for p in self.params if id(p) not in covered]
        if missing:
            raise RuntimeError(f"host recomputation: {len(missing)} weight(s) belong to no segment "
                               f"(first {missing[0]})")

    @staticmethod
    def _pair_weights(stacked, twin) -> list:
        """(stacked weight, twin weight) pairs matched by their path inside the block."""
        single = model_parameters(twin)
        pairs = []
        for name, p in model_parameters(stacked).items():
            if not p.requires_grad:
                continue
            t = single[name]
            if tuple(p.shape[1:]) != tuple(t.shape):
                raise RuntimeError(f"twin weight {name}: {tuple(t.shape)} is not a layer of {tuple(p.shape)}")
            pairs.append((p, t))
        return pairs

    def _tick(self, segment: str) -> None:
        if self.profile is None:
            return
        ms.runtime.synchronize()
        now = time.perf_counter()
        last = self.profile.get("_last", now)
        if segment:
            self.profile[segment] = self.profile.get(segment, 0.0) + (now - last)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
            self.profile["peak_rss_gib_after/" + segment] = peak
        self.profile["_last"] = now

    def __call__(self, batch, prev_pos, prev_msa_first_row, prev_pair, loss_scale, drop=None):
        grads = {}
        self._tick("")
        # -- forward, keeping segment inputs only ------------------------------------------------------------
        templates = None
        if self.templates is not None:
            num_t = int(batch["template_mask"].shape[0])
            embs = [self.templates["forward"](batch, ms.Tensor(t, ms.int32), drop) for t in range(num_t)]
            templates = ops.stack(embs, axis=2)
            del embs
            self._tick("template_forward")
        msa, pair, extra, msa_mask, extra_mask, mask_2d = self.embed_forward(batch, prev_pos, prev_msa_first_row,
                                                                            prev_pair, templates)
        self._tick("embed_forward")
        extra_stack, evo_stack = self.stacks
        saved_extra, saved_evo = [], []
        for i in range(extra_stack["num"]):
            idx = ms.Tensor(i, ms.int32)
            extra_stack["load"](idx)
            saved_extra.append((extra, pair))
            extra, pair = extra_stack["forward"](extra, pair, extra_mask, mask_2d, drop, idx)
        d_extra = ops.zeros_like(extra)                        # the extra-MSA stack hands on the pair only
        self._tick("extra_msa_stack_forward")
        for i in range(evo_stack["num"]):
            idx = ms.Tensor(i, ms.int32)
            evo_stack["load"](idx)
            saved_evo.append((msa, pair))
            msa, pair = evo_stack["forward"](msa, pair, msa_mask, mask_2d, drop, idx)
        self._tick("evoformer_forward")
        # -- the tail's gradient, then backward block by block ----------------------------------------------
        outputs, (d_msa, d_pair), tail_grads = self.tail_vjp(msa, pair, batch, drop, loss_scale)
        self._collect(grads, self.tail_weights, tail_grads)
        del msa, pair
        self._tick("heads_structure_loss_forward_backward")
        d_msa, d_pair = self._backward(evo_stack, saved_evo, msa_mask, mask_2d, drop, d_msa, d_pair, grads)
        self._tick("evoformer_recompute_backward")
        d_extra, d_pair = self._backward(extra_stack, saved_extra, extra_mask, mask_2d, drop, d_extra, d_pair,
                                         grads)
        self._tick("extra_msa_stack_recompute_backward")
        _, input_grads, embed_grads = self.embed_vjp(templates, batch, prev_pos, prev_msa_first_row, prev_pair,
                                                     d_msa, d_pair, d_extra)
        self._collect(grads, self.embed_weights, embed_grads)
        self._tick("embed_recompute_backward")
        if self.templates is not None:
            d_templates = input_grads[0]
            for t in range(int(templates.shape[2])):
                _, _, g = self.templates["vjp"](batch, ms.Tensor(t, ms.int32), drop, d_templates[:, :, t])
                self._collect(grads, self.templates["weights"], g, accumulate=True)
            self._tick("template_recompute_backward")
        ordered = tuple(grads[id(p)] for p in self.params)
        norm, clipped = self.finish(ms.mutable(ordered), loss_scale)
        self._tick("unscale_clip")
        return outputs[1], outputs[2:], norm, clipped

    def _backward(self, stack, saved, mask_a, mask_b, drop, d_a, d_b, grads):
        """Blocks last to first: recompute each inside its vector-Jacobian graph; stacked weight gradients."""
        for i in reversed(range(stack["num"])):
            idx = ms.Tensor(i, ms.int32)
            stack["load"](idx)
            a, b = saved.pop()
            _, (d_a, d_b), layer_grads = stack["vjp"](a, b, mask_a, mask_b, drop, idx, d_a, d_b)
            stack["store"](idx, ms.mutable(layer_grads))
            del a, b, layer_grads
        for p, buffer in zip(stack["stacked"], stack["store"].buffers):
            grads[id(p)] = buffer
        return d_a, d_b

    @staticmethod
    def _collect(grads: dict, weights, values, accumulate: bool = False) -> None:
        for p, g in zip(weights, values):
            if accumulate and id(p) in grads:
                grads[id(p)] = grads[id(p)] + g
            else:
                grads[id(p)] = g
