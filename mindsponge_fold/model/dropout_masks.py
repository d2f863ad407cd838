"""Dropout masks sampled on the host (Suppl. 1.11.6 rates; AlphaFold's shared dropout), for training and for
inference with ``model.global_config.eval_dropout``.

Every :class:`~mindsponge_fold.model.primitives.SharedDropout` of the model is a *site* with a key
(``evoformer_iteration/triangle_multiplication_outgoing``, ``template_pair_stack/...``, ``structure_module/attention``),
the symbolic shape of its activation, the axis that shares the mask and the stack it is repeated over (the blocks of a
stack, the templates, the structure-module layers). :func:`sample_masks` draws one mask per site and stack entry,
``keep / (1 - rate)`` scaled; the network gets them as the ``drop`` dict.

* Training (:mod:`mindsponge_fold.train.step`): :func:`step_masks`, a generator seeded by ``(train.seed, step,
  example, iteration)`` (:func:`mask_rng`), so a recomputation replays exactly the same dropout
  (:mod:`mindsponge_fold.train.remat`), a resumed run repeats an uninterrupted one, and data-parallel ranks draw
  different masks for their different examples (``example`` is the global example index).
* Inference with ``eval_dropout`` (:mod:`mindsponge_fold.model.runner`): :func:`inference_masks`, seeded by
  ``(seed, iteration)`` with the model's seed; only the sites of AlphaFold's ``dropout_wrapper`` (the Evoformer,
  extra-MSA and template pair stacks: ``eval_dropout`` overrides ``is_training`` there), not the structure module,
  whose dropout follows ``is_training`` alone (AlphaFold's folding.py), :func:`dropout_sites` with
  ``inference=True``.

No MindSpore import here: the masks are numpy arrays (the caller turns them into Tensors).
"""
from __future__ import annotations

import numpy as np


def dropout_sites(model, inference: bool = False) -> list:
    """The model's dropout sites with a rate > 0, one per key, sorted by key. ``inference``: only the sites that
    ``eval_dropout`` turns on at inference (``SharedDropout.at_inference``)."""
    from mindsponge_fold.model.primitives import SharedDropout
    sites = {}
    for _, cell in model.cells_and_names():
        if isinstance(cell, SharedDropout) and cell.rate > 0.0 and cell.key and (cell.at_inference or not inference):
            sites.setdefault(cell.key, cell)
    return [sites[k] for k in sorted(sites)]


def activation_sizes(item: dict, torsion_rows: bool) -> dict:
    """Symbolic sizes of one example's activations from its features (arrays or Tensors): 'N' residues, 'S' MSA rows
    of the Evoformer (cluster rows, plus one per template when the template torsion rows are appended), 'E' extra
    rows, 'T' templates."""
    n = int(tuple(item["aatype"].shape)[-1])
    t = int(tuple(item["template_aatype"].shape)[0]) if "template_aatype" in item else 0
    s = int(tuple(item["msa_feat"].shape)[0]) + (t if torsion_rows else 0)
    e = int(tuple(item["extra_msa"].shape)[0]) if "extra_msa" in item else 0
    return {"N": n, "S": s, "E": e, "T": t}


def mask_rng(seed: int, step: int, example: int, iteration: int) -> np.random.Generator:
    """The generator of one example's masks in one recycling iteration of one training step."""
    return np.random.default_rng([int(seed), int(step), int(example), int(iteration), 0xD0])


def inference_rng(seed: int, iteration: int) -> np.random.Generator:
    """The generator of the masks of one recycling iteration at inference (a stream apart from training's)."""
    return np.random.default_rng([int(seed), int(iteration), 0xE7D0])


def sample_masks(sites, sizes: dict, rng: np.random.Generator) -> dict:
    """key -> float32 mask (stack axes flattened first, 1 on the shared axis) with entries 0 or 1/(1 - rate).
    Sites whose stack has size 0 (no templates) get no mask."""
    out = {}
    for site in sites:
        shape = site.mask_shape(sizes)
        if not all(shape):
            continue
        keep = 1.0 - site.rate
        out[site.key] = (rng.random(shape, dtype=np.float32) < keep).astype(np.float32) * np.float32(1.0 / keep)
    return out


def step_masks(sites, item: dict, torsion_rows: bool, seed: int, step: int, example: int, iteration: int) -> dict:
    """The dropout masks of one training example and recycling iteration (empty when no site has a rate > 0)."""
    if not sites:
        return {}
    return sample_masks(sites, activation_sizes(item, torsion_rows), mask_rng(seed, step, example, iteration))


def inference_masks(sites, item: dict, torsion_rows: bool, seed: int, iteration: int) -> dict:
    """The dropout masks of recycling iteration ``iteration`` at inference with ``eval_dropout``, for the (padded)
    inputs ``item`` of a model run with ``seed`` (empty when no site has a rate > 0)."""
    if not sites:
        return {}
    return sample_masks(sites, activation_sizes(item, torsion_rows), inference_rng(seed, iteration))
