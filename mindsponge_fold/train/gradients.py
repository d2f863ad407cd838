"""Training gradients of one recycling iteration, as AlphaFold's fixture defines them (``gradients.npz``).

:func:`iteration_gradients` differentiates ``loss/total`` of iteration ``K`` (features of batch ``K``, ground truth
merged in, ``prev_*`` given: e.g. teacher-forced from a reference's ``recycle_{K-1}/*``) with respect to every weight,
through :class:`~mindsponge_fold.train.step.TrainStep` itself (its loss net and gradient graph, or its host-driven
recomputation when the config asks for it): dropout off, no clipping, no length scaling, the configured loss scale
divided out again. Returns ``grad/<AlphaFold name>`` for every weight plus the ``loss/*`` terms of that pass.
"""
from __future__ import annotations

import numpy as np

from mindsponge_fold.common.config import apply_overrides
from mindsponge_fold.data import feature_shapes as fs
from mindsponge_fold.data.derived_features import add_derived_features

GRADIENT_OVERRIDES = ("train.dropout=false", "train.grad_clip_norm=0")


def gradient_config(cfg):
    """The config the gradients are taken with: the run's, dropout off and no clipping."""
    import copy
    return apply_overrides(copy.deepcopy(cfg), list(GRADIENT_OVERRIDES))


def iteration_gradients(cfg, weights, iteration: dict, ground_truth: dict, prev: tuple) -> dict:
    """``iteration``: processed features of one recycling iteration (no batch axis); ``ground_truth``: target
    arrays (ground_truth.npz names); ``prev``: (prev_pos [N, 37, 3], prev_msa_first_row [N, c_m], prev_pair
    [N, N, c_z]); ``weights``: AlphaFold .npz / our .ckpt path, a dict of AlphaFold-layout arrays, or None."""
    import mindspore as ms

    from mindsponge_fold.model.params import load_alphafold_params, load_weights, model_parameters, official_name
    from mindsponge_fold.train.step import TrainStep, step_inputs
    trainer = TrainStep(gradient_config(cfg), length_scaled=False, with_optimizer=False)
    if isinstance(weights, dict):
        load_alphafold_params(trainer.model, weights)
    elif weights is not None:
        load_weights(trainer.model, weights)
    iteration = add_derived_features({k: v for k, v in iteration.items() if k in fs.PROCESSED_FEATURES})
    batch = {k: np.asarray(v)[None, None] for k, v in iteration.items()}
    batch.update({k: np.asarray(v)[None, None] for k, v in ground_truth.items() if k in fs.TARGET_FEATURES})
    prev = tuple(ms.Tensor(np.asarray(p, np.float32)) for p in prev)
    _, terms, _, grads = trainer.gradients(step_inputs(batch, 0, 0), prev)
    names = {id(p): n for n, p in model_parameters(trainer.model).items()}
    out = {"grad/" + official_name(names[id(p)]): g.asnumpy().astype(np.float32)
           for p, g in zip(trainer.params, grads)}
    for name, value in zip(trainer.term_names, terms):
        if name.startswith("loss/") and not name.startswith("loss/structure_module/"):
            out[name] = np.asarray(value.asnumpy(), np.float32)
    return out
