"""Confidence metrics from the head logits (numpy, float64): pLDDT, predicted aligned error, pTM, and the JSON
files structure viewers read (AlphaFold DB layout).

Suppl. 1.9.6 (pLDDT), 1.9.7 (PAE and pTM, Yang & Skolnick's d0).
"""
from __future__ import annotations

import json

import numpy as np

from mindsponge_fold.common.fileio import write_text


def _softmax(logits):
    x = np.asarray(logits, np.float64)
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def compute_plddt(logits) -> np.ndarray:
    """Per-residue pLDDT in [0, 100]: expected lDDT-Ca under the predicted bin distribution [N, num_bins]."""
    num_bins = np.shape(logits)[-1]
    bin_centers = (np.arange(num_bins, dtype=np.float64) + 0.5) / num_bins
    return (_softmax(logits) * bin_centers).sum(-1) * 100.0


def bin_centers_from_breaks(breaks) -> np.ndarray:
    """Centres of the PAE bins: each break + half a step, plus one catch-all bin beyond the last break."""
    breaks = np.asarray(breaks, np.float64)
    step = breaks[1] - breaks[0]
    centers = breaks + step / 2.0
    return np.append(centers, centers[-1] + step)


def compute_predicted_aligned_error(logits, breaks) -> dict:
    """Expected aligned error per residue pair [N, N] (Angstrom), the bin probabilities, and the largest bin centre
    (the maximum value the PAE can take)."""
    probs = _softmax(logits)
    centers = bin_centers_from_breaks(breaks)
    return {
        "aligned_confidence_probs": probs,
        "predicted_aligned_error": (probs * centers).sum(-1),
        "max_predicted_aligned_error": np.float64(centers[-1]),
    }


def predicted_tm_score(logits, breaks, residue_weights=None, asym_id=None) -> np.float64:
    """pTM (Suppl. eq. 40): max over alignment residues i of the weighted mean over j of E[TM term(e_ij)].

    ``residue_weights`` [N] in [0, 1] (default all ones; e.g. the sequence mask); ``asym_id`` [N] restricts the
    pairs to different chains (interface pTM).
    """
    logits = np.asarray(logits)
    num_res = logits.shape[0]
    weights = np.ones(num_res) if residue_weights is None else np.asarray(residue_weights, np.float64)
    centers = bin_centers_from_breaks(breaks)
    clipped_num_res = max(weights.sum(), 19.0)          # keeps d0 positive
    d0 = 1.24 * (clipped_num_res - 15.0) ** (1.0 / 3.0) - 1.8
    tm_per_bin = 1.0 / (1.0 + np.square(centers) / np.square(d0))
    predicted_tm_term = (_softmax(logits) * tm_per_bin).sum(-1)
    if asym_id is None:
        pair_mask = np.ones((num_res, num_res), bool)
    else:
        asym_id = np.asarray(asym_id)
        pair_mask = asym_id[:, None] != asym_id[None, :]
    predicted_tm_term = predicted_tm_term * pair_mask
    pair_weights = pair_mask * (weights[None, :] * weights[:, None])
    normed = pair_weights / (1e-8 + pair_weights.sum(-1, keepdims=True))
    per_alignment = (predicted_tm_term * normed).sum(-1)
    return np.float64((per_alignment * weights).max())


def confidence_metrics(prediction: dict, mask=None) -> dict:
    """pLDDT (+ mean over ``mask``), and PAE / pTM when the prediction has 'predicted_aligned_error' logits.
    ``prediction`` maps head names to their outputs ({'predicted_lddt': {'logits': ...}, ...})."""
    plddt = compute_plddt(prediction["predicted_lddt"]["logits"])
    mask = np.ones(plddt.shape[0]) if mask is None else np.asarray(mask, np.float64)
    out = {"plddt": plddt, "mean_plddt": np.float64((plddt * mask).sum() / max(mask.sum(), 1e-8))}
    pae_head = prediction.get("predicted_aligned_error")
    if pae_head is not None:
        out.update(compute_predicted_aligned_error(pae_head["logits"], pae_head["breaks"]))
        out["ptm"] = predicted_tm_score(pae_head["logits"], pae_head["breaks"], residue_weights=mask)
    return out


def pae_json(pae, max_pae) -> str:
    """The PAE matrix as AlphaFold DB serves it (read by PAE viewers, e.g. Mol*/PAE Viewer, ChimeraX):
    ``[{"predicted_aligned_error": [[...]], "max_predicted_aligned_error": x}]`` with errors rounded to 0.1 A."""
    rounded = np.round(np.asarray(pae, np.float64), decimals=1)
    payload = [{"predicted_aligned_error": rounded.tolist(), "max_predicted_aligned_error": float(max_pae)}]
    return json.dumps(payload, indent=None, separators=(",", ":"))


def plddt_json(plddt) -> str:
    """Per-residue pLDDT in AlphaFold DB's confidence JSON layout (residue numbers from 1, categories
    D < 50 <= L < 70 <= M < 90 <= H)."""
    scores = np.round(np.asarray(plddt, np.float64), decimals=2)
    categories = np.full(scores.shape, "D", dtype="<U1")
    categories[scores >= 50] = "L"
    categories[scores >= 70] = "M"
    categories[scores >= 90] = "H"
    payload = {"residueNumber": list(range(1, len(scores) + 1)), "confidenceScore": scores.tolist(),
               "confidenceCategory": categories.tolist()}
    return json.dumps(payload, indent=None, separators=(",", ":"))


def write_pae_json(path, pae, max_pae) -> None:
    """Write :func:`pae_json` atomically."""
    write_text(path, pae_json(pae, max_pae))
