"""Model-input features derived from other features on the host (numpy) instead of in the graph.

AlphaFold computes the template torsion angles inside the network (``all_atom.atom37_to_torsion_angles`` on the
template atom positions, Suppl. Alg. 2 line 7). They depend only on the input features, so here they are computed
once per example in numpy (:mod:`mindsponge_fold.common.all_atom`) and fed to the graph as three extra features:

* ``template_torsion_angles_sin_cos`` [N_templ, N_res, 7, 2]
* ``template_alt_torsion_angles_sin_cos`` [N_templ, N_res, 7, 2]
* ``template_torsion_angles_mask`` [N_templ, N_res, 7]

:func:`add_derived_features` is the one entry point: the training feature pipeline calls it once per sample in the
data-loading workers (:func:`mindsponge_fold.data.transforms.run_pipeline`, training mode), inference
(``ModelRunner``: run-features, predict) once per iteration on the host. No MindSpore import.
"""
from __future__ import annotations

import numpy as np

from mindsponge_fold.common import all_atom
from mindsponge_fold.common.errors import InputError

DERIVED_FEATURES = ("template_torsion_angles_sin_cos", "template_alt_torsion_angles_sin_cos",
                    "template_torsion_angles_mask")
TORSION_INPUTS = ("template_aatype", "template_all_atom_positions", "template_all_atom_masks")


def template_torsion_features(aatype, positions, atom_mask, placeholder_for_undefined: bool = False) -> dict:
    """Torsion features of templates with any leading axes: aatype [..., N] (AlphaFold residue ids, gap = 21),
    positions [..., N, 37, 3], atom_mask [..., N, 37] -> the three DERIVED_FEATURES with the same leading axes."""
    aatype = np.asarray(aatype)
    positions = np.asarray(positions, np.float32)
    atom_mask = np.asarray(atom_mask, np.float32)
    lead = aatype.shape[:-1]
    n = aatype.shape[-1]
    if positions.shape != lead + (n, 37, 3) or atom_mask.shape != lead + (n, 37):
        raise ValueError(f"template feature shapes disagree: aatype {aatype.shape}, positions {positions.shape}, "
                         f"masks {atom_mask.shape}")
    flat = [all_atom.atom37_to_torsion_angles(a, p, m, placeholder_for_undefined=placeholder_for_undefined)
            for a, p, m in zip(aatype.reshape(-1, n), positions.reshape(-1, n, 37, 3),
                               atom_mask.reshape(-1, n, 37))]
    out = {}
    for ours, theirs in zip(DERIVED_FEATURES, ("torsion_angles_sin_cos", "alt_torsion_angles_sin_cos",
                                               "torsion_angles_mask")):
        tail = (n, 7, 2) if theirs != "torsion_angles_mask" else (n, 7)
        stacked = np.stack([f[theirs] for f in flat]) if flat else np.zeros((0,) + tail, np.float32)
        out[ours] = stacked.reshape(lead + tail).astype(np.float32)
    return out


def add_derived_features(batch: dict, placeholder_for_undefined: bool = False, source=None) -> dict:
    """Return ``batch`` plus the host-derived model inputs (a new dict; the input is not modified).

    Works on processed features with or without leading batch axes (e.g. [R, N_templ, N_res] per recycling
    iteration). A batch without templates is returned unchanged; a batch with only some template features is an
    InputError. ``placeholder_for_undefined`` is AlphaFold's ``not global_config.zero_init`` (False for the released
    models)."""
    present = [k for k in TORSION_INPUTS if k in batch]
    if not present:
        return dict(batch)
    if len(present) != len(TORSION_INPUTS):
        missing = sorted(set(TORSION_INPUTS) - set(present))
        raise InputError(f"template features incomplete: missing {', '.join(missing)}", source)
    try:
        derived = template_torsion_features(batch["template_aatype"], batch["template_all_atom_positions"],
                                            batch["template_all_atom_masks"], placeholder_for_undefined)
    except ValueError as e:
        raise InputError(str(e), source) from None
    return {**batch, **derived}
