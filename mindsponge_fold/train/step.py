"""The AlphaFold 2 training step in MindSpore (Suppl. 1.11.3 optimisation, 1.10 recycling in training).

One step on a batch of ``B`` examples (arrays shaped ``(B, R, ...)`` by :mod:`mindsponge_fold.data.dataset`):

1. draw the number of recycling iterations ``n ~ U{0..train.max_recycle}`` (from ``(seed, step)``: the same on every
   rank and again after a resume);
2. per example: iterations ``0..n-1`` run the compiled forward without gradients (:class:`RecycleForward`, dropout
   on), feeding back ``prev_pos`` / ``prev_msa_first_row`` / ``prev_pair``; iteration ``n`` runs the compiled
   gradient graph (:class:`GradStep`): loss (length-scaled, :class:`~mindsponge_fold.train.losses.AlphaFoldLoss`)
   times the loss scale, gradients unscaled and clipped to global norm ``train.grad_clip_norm`` *per example*;
3. the examples' clipped gradients are averaged (and all-reduced over data-parallel ranks) by :class:`ApplyStep`,
   which checks them for inf/NaN (``amp.all_finite``: the stock overflow check has no CPU kernel) and, only when
   finite, applies Adam and updates the EMA of the weights; the loss scaler (dynamic: halve on overflow, double
   after ``scale_window`` clean steps; fixed: constant) is adjusted either way. An overflow step therefore leaves
   weights, Adam moments and EMA untouched.

Dropout (``train.dropout``, the paper's rates) uses masks sampled on the host per (seed, step, example, iteration)
(:mod:`mindsponge_fold.model.dropout_masks`) and passed to the network as inputs: reproducible, identical after a
resume, and replayed exactly by a recomputation. Recomputation (Suppl. 1.11.8): ``model.global_config.use_remat``
resolves (:func:`~mindsponge_fold.model.primitives.resolve_remat`) to 'graph' (``Cell.recompute()`` on the stacked
Evoformer, extra-MSA and template-pair blocks, inside the gradient graph: Ascend/GPU), 'host' (the recomputation driven
from the host block by block, :class:`~mindsponge_fold.train.remat.HostRematGrad`: the CPU default, where
``Cell.recompute`` frees nothing) or 'none'. Both give the gradient of the plain graph (tests/test_remat.py).

The learning rate is a function of the step (:func:`learning_rate`: linear warm-up, then x ``lr_decay_factor`` after
``lr_decay_steps``), written into Adam's learning-rate Parameter (:func:`assign`) before each step, so skipped steps and
resumes keep the schedule exact. Graph inputs are ``ms.mutable`` dicts (one compile per shape) and graph outputs are
tuples.
"""
from __future__ import annotations

import dataclasses

import mindspore as ms
import numpy as np
from mindspore import Tensor, amp, nn, ops

from mindsponge_fold.common.errors import ConfigError
from mindsponge_fold.data import feature_shapes as fs
from mindsponge_fold.model.alphafold import build_model
from mindsponge_fold.model.params import model_parameters
from mindsponge_fold.model.primitives import ModelContext
from mindsponge_fold.model.dropout_masks import dropout_sites, step_masks
from mindsponge_fold.train.losses import SM_LOSS, AlphaFoldLoss

RECYCLED_OUTPUTS = ("structure_module/final_atom_positions", "representations/msa_first_row",
                    "representations/pair")
STEP_INPUTS = tuple(fs.MODEL_INPUTS) + tuple(fs.TARGET_FEATURES) + ("seq_length", "is_distillation")
SM_TERMS = ("fape", "sidechain_fape", "chi_loss", "angle_norm_loss", "structural_violation")

# Per-parameter maps go through HyperMap: a Python comprehension over ~300 gradients in construct took minutes to
# compile (MindSpore 2.10), HyperMap seconds.
_scale = ops.MultitypeFuncGraph("scale")
_square_sum = ops.MultitypeFuncGraph("square_sum")
_ema_update = ops.MultitypeFuncGraph("ema_update")


@_scale.register("Tensor", "Tensor")
def _scale_tensor(factor, grad):
    return grad * factor.astype(grad.dtype)


@_square_sum.register("Tensor", "Tensor")
def _square_sum_tensor(factor, grad):
    return ops.reduce_sum(ops.square(grad.astype(ms.float32) * factor))


@_ema_update.register("Number", "Tensor", "Tensor")
def _ema_update_tensor(decay, shadow, param):
    return ops.assign(shadow, decay * shadow + (1.0 - decay) * param)


def assign(param, value) -> None:
    """Write ``value`` into ``param``'s existing memory (``ops.assign``).

    Not ``Parameter.set_data``: after a graph that updates the parameter inside a branch (``ApplyStep``'s
    ``if finite``) has compiled, ``set_data`` swaps in new memory that the compiled graph no longer updates (measured,
    MindSpore 2.10: the step's updates are lost)."""
    ops.assign(param, Tensor(np.asarray(value, dtype=ms.dtype_to_nptype(param.dtype)).reshape(param.shape)))


def learning_rate(step: int, train_cfg) -> float:
    """Learning rate of (0-based) ``step``: linear warm-up to ``learning_rate`` over ``warmup_steps`` steps, then
    constant, times ``lr_decay_factor`` from step ``lr_decay_steps`` on (Suppl. 1.11.3)."""
    base = float(train_cfg.learning_rate)
    warmup = int(train_cfg.warmup_steps)
    lr = base * min(1.0, (step + 1) / warmup) if warmup > 0 else base
    if train_cfg.lr_decay_steps and step >= int(train_cfg.lr_decay_steps):
        lr *= float(train_cfg.lr_decay_factor)
    return lr


def num_recycles(step: int, train_cfg) -> int:
    """Recycling iterations before the gradient iteration, ``U{0..max_recycle}``, a pure function of (seed, step)."""
    # (a uniform float, not rng.integers: numpy's small-range integers were strongly correlated across these seeds)
    u = np.random.default_rng([int(train_cfg.seed), int(step), 0x5EC]).random()
    return min(int(u * (int(train_cfg.max_recycle) + 1)), int(train_cfg.max_recycle))


def training_context(cfg) -> ModelContext:
    """The model context for training: dropout follows ``train.dropout`` (and ``global_config.deterministic``)."""
    ctx = ModelContext.from_config(cfg)
    if not cfg.train.dropout:
        ctx = dataclasses.replace(ctx, deterministic=True)
    return ctx


class LossNet(nn.Cell):
    """Model iteration + losses: returns (loss x scale, loss, *logged terms). Only the first output is
    differentiated (``has_aux``)."""

    def __init__(self, model, loss, term_names):
        super().__init__()
        self.model = model
        self.loss = loss
        self.term_names = tuple(term_names)

    def construct(self, batch, prev_pos, prev_msa_first_row, prev_pair, loss_scale, drop=None):
        out = self.model(batch, prev_pos, prev_msa_first_row, prev_pair, drop)
        total, terms = self.loss(out, batch)
        return (total * loss_scale, total) + tuple([terms[k] for k in self.term_names])


class GradFinish(nn.Cell):
    """Scaled gradients -> (global norm of the unscaled gradients, unscaled gradients clipped to ``clip_norm``)."""

    def __init__(self, clip_norm: float):
        super().__init__()
        self.clip_norm = float(clip_norm)
        self.hyper_map = ops.HyperMap()

    def construct(self, grads, loss_scale):
        # one weight-sized output: the norm of the unscaled gradients (unscaled per tensor inside the reduction:
        # squares of scaled gradients overflow float32 at large loss scales), then a single multiplication by
        # 1/scale x clip factor
        factor = 1.0 / loss_scale
        norm = ops.sqrt(ops.addn(self.hyper_map(ops.partial(_square_sum, factor), grads)))
        if self.clip_norm > 0:
            factor = factor * (self.clip_norm / ops.maximum(norm, self.clip_norm))
        return norm, self.hyper_map(ops.partial(_scale, factor), grads)


class GradStep(nn.Cell):
    """The gradient iteration of one example as one graph: (loss, terms, grad norm before clipping, clipped
    grads)."""

    def __init__(self, loss_net, params, finish):
        super().__init__()
        self.loss_net = loss_net
        self.params = ms.ParameterTuple(params)
        self.grad_fn = ms.value_and_grad(loss_net, None, self.params, has_aux=True)
        self.finish = finish

    def construct(self, batch, prev_pos, prev_msa_first_row, prev_pair, loss_scale, drop=None):
        outputs, grads = self.grad_fn(batch, prev_pos, prev_msa_first_row, prev_pair, loss_scale, drop)
        norm, grads = self.finish(grads, loss_scale)
        return outputs[1], outputs[2:], norm, grads


class RecycleForward(nn.Cell):
    """A no-gradient recycling iteration: the network's outputs that the next iteration reads."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def construct(self, batch, prev_pos, prev_msa_first_row, prev_pair, drop=None):
        out = self.model(batch, prev_pos, prev_msa_first_row, prev_pair, drop)
        return tuple([ops.stop_gradient(out[k]) for k in RECYCLED_OUTPUTS])


class ApplyStep(nn.Cell):
    """Average over data-parallel ranks, overflow check, Adam + EMA when finite, loss-scale update."""

    def __init__(self, params, optimizer, scaler, ema_params, ema_decay: float, reducer=None):
        super().__init__()
        self.params = ms.ParameterTuple(params)
        self.optimizer = optimizer
        self.scaler = scaler
        self.ema = ms.ParameterTuple(ema_params)
        self.decay = float(ema_decay)
        self.reducer = reducer
        self.use_reducer = reducer is not None
        self.hyper_map = ops.HyperMap()

    def update_ema(self):
        return self.hyper_map(ops.partial(_ema_update, self.decay), self.ema, self.params)

    def construct(self, grads):
        if self.use_reducer:
            grads = self.reducer(grads)
        finite = amp.all_finite(grads)
        ok = finite
        if finite:
            ok = ops.depend(ok, self.optimizer(grads))
            ok = ops.depend(ok, self.update_ema())
        ok = ops.depend(ok, self.scaler.adjust(finite))
        return ok


def make_loss_scaler(train_cfg):
    """``train.loss_scale.type``: dynamic (DynamicLossScaler semantics) | fixed | none (fixed scale 1)."""
    ls = train_cfg.loss_scale
    kind = ls.type
    if kind == "dynamic":
        return amp.DynamicLossScaler(float(ls.init_scale), int(ls.scale_factor), int(ls.scale_window))
    if kind in ("fixed", "none"):
        scaler = amp.StaticLossScaler(float(ls.init_scale) if kind == "fixed" else 1.0)
        return scaler
    raise ConfigError(f"train.loss_scale.type must be dynamic, fixed or none, got {kind!r}")


def scaler_parameters(scaler) -> dict:
    """The loss scaler's state Parameters by checkpoint name."""
    out = {"train.loss_scale": scaler.scale_value}
    if hasattr(scaler, "counter"):
        out["train.loss_scale_counter"] = scaler.counter
    return out


def step_inputs(batch: dict, example: int, iteration: int) -> dict:
    """Tensors of one example and recycling iteration from a ``(B, R, ...)`` batch, as the ``ms.mutable`` dict the
    compiled graphs take. The template torsion features come with the batch: the data pipeline derives them once per
    sample in the loader workers (:func:`mindsponge_fold.data.transforms.run_pipeline`)."""
    item = {k: np.asarray(v[example, iteration]) for k, v in batch.items()
            if k in STEP_INPUTS or k in fs.INPUT_FEATURES}
    if "template_aatype" in item and "template_torsion_angles_mask" not in item:
        raise ValueError("training batch has templates but no template torsion features (they are derived in the "
                         "data pipeline: mindsponge_fold.data.derived_features.add_derived_features)")
    out = {}
    for k in STEP_INPUTS:
        if k in item:
            spec = fs.PROCESSED_FEATURES[k]
            out[k] = Tensor(np.asarray(item[k], dtype=spec.dtype))
    return ms.mutable(out)


class TrainStep:
    """Model, losses, optimiser, loss scaler, EMA and the compiled graphs of one training process.

    ``step(batch, step_index) -> dict`` runs one optimisation step and returns host scalars for logging
    (``loss`` = the length-scaled loss that is differentiated, ``loss/total`` etc. unscaled, ``grad_norm``,
    ``loss_scale`` after the step, ``lr``, ``num_recycle``, ``skipped``).

    ``rank``: this process's data-parallel rank (its examples' dropout masks differ from the other ranks');
    ``length_scaled``: multiply the loss by sqrt(min(N_res, crop)) (Suppl. 1.9; off only to compare gradients with
    AlphaFold's unscaled ``loss/total``); ``with_optimizer=False``: the gradient alone (no Adam moments, EMA or
    apply graph: three weight-sized states fewer) for :meth:`batch_gradients` / :meth:`gradients` only."""

    def __init__(self, cfg, reducer_degree: int | None = None, rank: int = 0, length_scaled: bool = True,
                 with_optimizer: bool = True):
        tc = cfg.train
        self.cfg = cfg
        self.rank = int(rank)
        self.ctx = training_context(cfg)
        self.model = build_model(cfg, self.ctx)
        self.model.set_train(True)
        crop = cfg.data.train.crop_size if length_scaled else None
        self.loss = AlphaFoldLoss(cfg, crop_size=crop)
        self.term_names = self._term_names()
        self.params = [p for p in self.model.trainable_params()]
        self.optimizer = self.ema = self.apply = None
        if with_optimizer:
            self.optimizer = nn.Adam(self.params, learning_rate=Tensor(learning_rate(0, tc), ms.float32),
                                     beta1=float(tc.adam_beta1), beta2=float(tc.adam_beta2), eps=float(tc.adam_eps))
            self.ema = ms.ParameterTuple(self.params).clone(prefix="ema", init="same")
        self.scaler = make_loss_scaler(tc)
        reducer = None
        if reducer_degree:
            reducer = nn.DistributedGradReducer(self.optimizer.parameters if with_optimizer else self.params,
                                                mean=True, degree=int(reducer_degree))
        finish = GradFinish(tc.grad_clip_norm)
        if self.ctx.remat == "host":
            from mindsponge_fold.train.remat import HostRematGrad
            self.grad_step = HostRematGrad(self.model, self.loss, self.term_names, self.params, finish, cfg.model,
                                           self.ctx)
        else:
            self.grad_step = GradStep(LossNet(self.model, self.loss, self.term_names), self.params, finish)
        self.forward = RecycleForward(self.model)
        self.reducer = reducer
        self._fresh_state = {}
        if with_optimizer:
            self.apply = ApplyStep(self.params, self.optimizer, self.scaler, self.ema, tc.ema_decay, reducer)
            # the fresh optimiser state without its moments (zeros, rebuilt on reset: two weight-sized copies saved)
            self._fresh_state = {k: p.asnumpy().copy() for k, p in self.optimizer_state().items()
                                 if not k.startswith(("opt.moment1.", "opt.moment2."))}
        evo = cfg.model.embeddings_and_evoformer
        self.c_m, self.c_z = int(evo.msa_channel), int(evo.pair_channel)
        self.dropout_sites = dropout_sites(self.model)
        self.torsion_rows = bool(self.model.evoformer.embed_torsion_angles)

    def _term_names(self) -> tuple:
        names = ["loss/total"] + ["loss/" + n for n in self.loss.order]
        computed = {"structural_violation"} if (self.loss.in_graph_metrics or self.loss.violation_weight) else set()
        names += [SM_LOSS + t for t in SM_TERMS if t != "structural_violation" or t in computed]
        return tuple(names)

    # -- one example --------------------------------------------------------------------------------------------
    def zero_prev(self, n_res: int) -> tuple:
        return (Tensor(np.zeros((n_res, 37, 3), np.float32)), Tensor(np.zeros((n_res, self.c_m), np.float32)),
                Tensor(np.zeros((n_res, n_res, self.c_z), np.float32)))

    def dropout_masks(self, batch: dict, step: int, example: int, iteration: int):
        """The ``drop`` input of one example and iteration (``ms.mutable`` dict of masks; None without dropout).
        ``example`` is the index within this process's batch; the masks are seeded by the global example index."""
        if not self.dropout_sites:
            return None
        item = {k: np.asarray(batch[k][example, iteration]) for k in ("aatype", "msa_feat", "extra_msa",
                                                                      "template_aatype") if k in batch}
        global_example = self.rank * int(np.shape(batch["aatype"])[0]) + example
        masks = step_masks(self.dropout_sites, item, self.torsion_rows, self.cfg.train.seed, step, global_example,
                           iteration)
        return ms.mutable({k: Tensor(v) for k, v in masks.items()}) if masks else None

    def gradients(self, inputs, prev: tuple, drop=None):
        """The gradient iteration on prepared inputs (``step_inputs``), previous outputs and dropout masks:
        (loss, terms, grad norm, clipped grads in ``self.params`` order), at the current loss scale."""
        return self.grad_step(inputs, *prev, self.scaler.scale_value, drop)

    def example_gradients(self, batch: dict, example: int, num_recycle: int, step: int = 0):
        """Recycle ``num_recycle`` times without gradients, then the gradient iteration on slice ``num_recycle``."""
        n_res = int(np.shape(batch["aatype"])[2])
        prev = self.zero_prev(n_res)
        for r in range(num_recycle):
            prev = self.forward(step_inputs(batch, example, r), *prev, self.dropout_masks(batch, step, example, r))
        drop = self.dropout_masks(batch, step, example, num_recycle)
        return self.gradients(step_inputs(batch, example, num_recycle), prev, drop)

    # -- one step -----------------------------------------------------------------------------------------------
    def set_learning_rate(self, step: int) -> float:
        lr = learning_rate(step, self.cfg.train)
        assign(self.optimizer.learning_rate, lr)
        return lr

    def batch_gradients(self, batch: dict, step_index: int) -> tuple:
        """(mean of the per-example unscaled, clipped gradients over this process's examples, losses, terms, grad
        norms, number of recycles): what :meth:`step` hands to the apply graph."""
        n = num_recycles(step_index, self.cfg.train)
        num_examples = int(np.shape(batch["aatype"])[0])
        losses, terms, norms, acc = [], [], [], None
        for b in range(num_examples):
            loss, example_terms, norm, grads = self.example_gradients(batch, b, n, step_index)
            acc = grads if acc is None else tuple(a + g for a, g in zip(acc, grads))
            losses.append(float(loss.asnumpy()))
            terms.append([float(t.asnumpy()) for t in example_terms])
            norms.append(float(norm.asnumpy()))
        if num_examples > 1:
            acc = tuple(a * (1.0 / num_examples) for a in acc)
        return acc, losses, terms, norms, n

    def reduced_gradients(self, batch: dict, step_index: int) -> dict:
        """The gradient step ``step_index`` applies (after the data-parallel mean over ranks): model-relative name ->
        numpy array. Changes no state (masks and recycle counts are functions of the step); every rank must call it
        (it all-reduces)."""
        acc = self.batch_gradients(batch, step_index)[0]
        if self.reducer is not None:
            acc = self.reducer(ms.mutable(acc))
        return {n: g.asnumpy() for n, g in zip(self.relative_names(), acc)}

    def step(self, batch: dict, step_index: int) -> dict:
        lr = self.set_learning_rate(step_index)
        acc, losses, terms, norms, n = self.batch_gradients(batch, step_index)
        finite = bool(self.apply(ms.mutable(acc)).asnumpy())   # mutable: a plain tuple recompiles per call
        out = {"loss": float(np.mean(losses)), "grad_norm": float(np.mean(norms)), "lr": lr, "num_recycle": n,
               "skipped": not finite, "loss_scale": float(self.scaler.scale_value.asnumpy())}
        out.update({k: float(v) for k, v in zip(self.term_names, np.mean(np.asarray(terms), axis=0))})
        return out

    # -- state --------------------------------------------------------------------------------------------------
    def relative_names(self) -> list[str]:
        """Names of ``self.params`` relative to the model Cell (``Parameter.name`` carries wrapper prefixes)."""
        names = {id(p): n for n, p in model_parameters(self.model).items()}
        return [names[id(p)] for p in self.params]

    def named_weights(self, ema: bool = False) -> dict:
        """Cell name (relative to the model) -> numpy array (a copy) of the weights, or of their EMA."""
        source = self.ema if ema else self.params
        # (copies: asnumpy() of a Parameter can share memory that the next step updates in place)
        return {n: s.asnumpy().copy() for n, s in zip(self.relative_names(), source)}

    def optimizer_state(self) -> dict:
        """Adam's moments (``opt.moment1.<name>`` / ``opt.moment2.<name>``, model-relative names), bias-correction
        powers and step counter, and the loss-scale state, as checkpoint name -> Parameter."""
        opt = self.optimizer
        out = {}
        for which in ("moment1", "moment2"):
            out.update({f"opt.{which}.{n}": m for n, m in zip(self.relative_names(), getattr(opt, which))})
        out.update({"opt.beta1_power": opt.beta1_power, "opt.beta2_power": opt.beta2_power,
                    "opt.global_step": opt.global_step})
        out.update(scaler_parameters(self.scaler))
        return out

    def reset_optimizer(self) -> None:
        """Back to the freshly built optimiser and loss scaler (fine-tuning from weights starts here)."""
        for name, p in self.optimizer_state().items():
            fresh = self._fresh_state.get(name)
            assign(p, np.zeros(p.shape, ms.dtype_to_nptype(p.dtype)) if fresh is None else fresh)
