"""Dropout masks of a training step, sampled on the host (Suppl. 1.11.6 rates; AlphaFold's shared dropout).

Every :class:`~mindsponge_fold.model.primitives.SharedDropout` of the model is a *site* with a key
(``evoformer_iteration/triangle_multiplication_outgoing``, ``template_pair_stack/...``, ``structure_module/attention``),
the symbolic shape of its activation, the axis that shares the mask and the stack it is repeated over (the blocks of a
stack, the templates, the structure-module layers). :func:`sample_masks` draws one mask per site and stack entry,
``keep / (1 - rate)`` scaled, from a generator seeded by ``(train.seed, step, example, iteration)``
(:func:`mask_rng`): the network gets them as the ``drop`` dict, so a recomputation replays exactly the same dropout
(:mod:`mindsponge_fold.train.remat`), a resumed run repeats an uninterrupted one, and data-parallel ranks draw
different masks for their different examples (``example`` is the global example index).

No MindSpore import: the masks are numpy arrays (the step turns them into Tensors).
"""
from __future__ import annotations

import numpy as np


def dropout_sites(model) -> list:
    """The model's dropout sites with a rate > 0, one per key, sorted by key."""
    from mindsponge_fold.model.primitives import SharedDropout
    sites = {}
    for _, cell in model.cells_and_names():
        if isinstance(cell, SharedDropout) and cell.rate > 0.0 and cell.key:
            sites.setdefault(cell.key, cell)
    return [sites[k] for k in sorted(sites)]


def activation_sizes(item: dict, torsion_rows: bool) -> dict:
    """Symbolic sizes of one example's activations from its features: 'N' residues, 'S' MSA rows of the Evoformer
    (cluster rows, plus one per template when the template torsion rows are appended), 'E' extra rows, 'T'
    templates."""
    n = int(np.shape(item["aatype"])[-1])
    t = int(np.shape(item["template_aatype"])[0]) if "template_aatype" in item else 0
    s = int(np.shape(item["msa_feat"])[0]) + (t if torsion_rows else 0)
    e = int(np.shape(item["extra_msa"])[0]) if "extra_msa" in item else 0
    return {"N": n, "S": s, "E": e, "T": t}


def mask_rng(seed: int, step: int, example: int, iteration: int) -> np.random.Generator:
    """The generator of one example's masks in one recycling iteration of one step."""
    return np.random.default_rng([int(seed), int(step), int(example), int(iteration), 0xD0])


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
    """The dropout masks of one example and recycling iteration (empty when no site has a rate > 0)."""
    if not sites:
        return {}
    return sample_masks(sites, activation_sizes(item, torsion_rows), mask_rng(seed, step, example, iteration))
