"""Template feature transforms (numpy): residue-type mapping, template mask, pseudo-beta (CB, CA for glycine),
template selection.

Template ``i`` is row ``i`` of every ``template_*`` array. Selection (``select_templates``) happens once per sample,
so every recycling iteration sees the same templates (as AlphaFold's ``random_crop_to_size`` with its fixed seed).
"""
from __future__ import annotations

import numpy as np

from mindsponge_fold.common import all_atom
from mindsponge_fold.common import residue_constants as rc

TEMPLATE_PREFIX = "template_"


def fix_templates_aatype(f: dict) -> dict:
    """One-hot template residues in HHblits order (22) -> AlphaFold restype indices."""
    hh = np.argmax(f["template_aatype"], axis=-1)
    f["template_aatype"] = np.asarray(rc.MAP_HHBLITS_AATYPE_TO_OUR_AATYPE, np.int32)[hh]
    return f


def make_template_mask(f: dict) -> dict:
    f["template_mask"] = np.ones(f["template_aatype"].shape[:1], np.float32)
    return f


def make_template_pseudo_beta(f: dict) -> dict:
    f["template_pseudo_beta"], f["template_pseudo_beta_mask"] = all_atom.pseudo_beta_fn(
        f["template_aatype"], f["template_all_atom_positions"], f["template_all_atom_masks"])
    return f


def ensure_template_features(f: dict, num_res: int) -> dict:
    """Give a sample without template hits empty (0-template) raw template arrays, so padding yields all-masked
    template slots instead of missing features."""
    empty = {
        "template_aatype": np.zeros((0, num_res, 22), np.float32),
        "template_all_atom_masks": np.zeros((0, num_res, 37), np.float32),
        "template_all_atom_positions": np.zeros((0, num_res, 37, 3), np.float32),
        "template_sum_probs": np.zeros((0, 1), np.float32),
        "template_domain_names": np.zeros((0,), "S1"),
    }
    for k, v in empty.items():
        f.setdefault(k, v)
    return f


def _text(value) -> str:
    return bytes(np.asarray(value).reshape(-1)[0]).decode(errors="replace") if np.size(value) else ""


def training_template_rows(f: dict) -> np.ndarray:
    """Rows of the templates a training sample may see (supplement 1.2.3): not from the sample's own PDB entry
    (``domain_name`` ``<pdb>_<chain>`` vs ``template_domain_names``) and, when the sample carries release dates
    (``release_date`` and ``template_release_date``, written by make-training-set), released before it; a
    template without a known date is kept."""
    n = f["template_aatype"].shape[0]
    keep = np.ones(n, bool)
    own = _text(f.get("domain_name", np.zeros(0, "S1"))).strip()
    own_pdb = own.split("_")[0].lower() if len(own.split("_")[0]) == 4 and "_" in own else None
    names = f.get("template_domain_names")
    if own_pdb and names is not None and len(names) == n:
        keep &= np.array([bytes(t).decode(errors="replace")[:4].lower() != own_pdb for t in names], bool)
    dates = f.get("template_release_date")
    released = _text(f.get("release_date", np.zeros(0, "S1")))
    if released and dates is not None and len(dates) == n:
        keep &= np.array([not d or bytes(d).decode() < released for d in dates], bool)
    return np.flatnonzero(keep)


def select_templates(f: dict, max_templates: int, subsample: bool, rng=None, filter_rows: bool = False) -> dict:
    """Keep at most ``max_templates`` templates. With ``subsample`` (training), AlphaFold's scheme: shuffle the
    templates, draw a start ``s ~ U{0..n}`` and keep the next ``min(n - s, max_templates)`` of them (so 0
    templates is possible); otherwise keep the first ``max_templates``. ``filter_rows`` (training,
    ``data.train.filter_templates``) first drops the templates :func:`training_template_rows` rejects."""
    keys = [k for k in f if k.startswith(TEMPLATE_PREFIX)]
    if not keys:
        return f
    if filter_rows:
        allowed = training_template_rows(f)
        if len(allowed) < f["template_aatype"].shape[0]:
            for k in keys:
                f[k] = f[k][allowed]
    n = f["template_aatype"].shape[0]
    if subsample:
        start = int(rng.integers("template_crop_start", 0, n + 1))
        order = rng.shuffle("template_order", np.arange(n))
        rows = order[start:start + min(n - start, max_templates)]
    else:
        rows = np.arange(min(n, max_templates))
    for k in keys:
        f[k] = f[k][rows]
    return f
