"""The one table of feature shapes, with symbolic dims. It serves padding, MindRecord schemas and validation.

Dims are either ints or one of the symbols N_res (residues), N_seq (MSA cluster rows), N_extra (extra-MSA rows),
N_templ (templates), N_msa (raw MSA rows), N_raw_templ (raw template hits). Features travel as dicts keyed by
AlphaFold's feature names; nothing here depends on MindSpore.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mindsponge_fold.common.errors import InputError

N_RES, N_SEQ, N_EXTRA, N_TEMPL = "N_res", "N_seq", "N_extra", "N_templ"
N_MSA, N_RAW_TEMPL = "N_msa", "N_raw_templ"
SYMBOLS = (N_RES, N_SEQ, N_EXTRA, N_TEMPL, N_MSA, N_RAW_TEMPL)


@dataclass(frozen=True)
class Feature:
    dims: tuple
    dtype: str          # numpy dtype name, or "bytes" for strings
    kind: str           # "raw" (pipeline output), "input" (model input), "target" (loss ground truth)
    doc: str = ""


def _f(dims, dtype, kind, doc=""):
    return Feature(tuple(dims), dtype, kind, doc)


# AlphaFold's raw features (data.pipeline.DataPipeline.process output), plus mmCIF labels for training.
RAW_FEATURES = {
    "aatype": _f([N_RES, 21], "int32", "raw", "one-hot query sequence (restypes + X)"),
    "between_segment_residues": _f([N_RES], "int32", "raw"),
    "domain_name": _f([1], "bytes", "raw"),
    "residue_index": _f([N_RES], "int32", "raw"),
    "seq_length": _f([N_RES], "int32", "raw", "L repeated L times"),
    "sequence": _f([1], "bytes", "raw"),
    "deletion_matrix_int": _f([N_MSA, N_RES], "int32", "raw"),
    "msa": _f([N_MSA, N_RES], "int32", "raw", "HHblits ids"),
    "num_alignments": _f([N_RES], "int32", "raw"),
    "msa_species_identifiers": _f([N_MSA], "bytes", "raw"),
    "template_aatype": _f([N_RAW_TEMPL, N_RES, 22], "float32", "raw", "one-hot, HHblits order"),
    "template_all_atom_masks": _f([N_RAW_TEMPL, N_RES, 37], "float32", "raw"),
    "template_all_atom_positions": _f([N_RAW_TEMPL, N_RES, 37, 3], "float32", "raw"),
    "template_sum_probs": _f([N_RAW_TEMPL, 1], "float32", "raw"),
    "template_domain_names": _f([N_RAW_TEMPL], "bytes", "raw"),
    "template_sequence": _f([N_RAW_TEMPL], "bytes", "raw"),
    # optional, written by make-training-set: the training loader drops templates released on/after the sample
    "template_release_date": _f([N_RAW_TEMPL], "bytes", "raw", "YYYY-MM-DD, empty when unknown"),
    "release_date": _f([1], "bytes", "raw", "YYYY-MM-DD release of the sample's own PDB entry"),
    "all_atom_positions": _f([N_RES, 37, 3], "float32", "raw", "ground truth atom37 (training labels)"),
    "all_atom_mask": _f([N_RES, 37], "float32", "raw"),
    "resolution": _f([], "float32", "raw"),
    "is_distillation": _f([], "float32", "raw", "1: self-distillation example (predicted structure as label)"),
}

# Processed features: what the network reads (one recycling iteration / ensemble member; no batch axis).
INPUT_FEATURES = {
    "aatype": _f([N_RES], "int32", "input"),
    "residue_index": _f([N_RES], "int32", "input"),
    "seq_length": _f([], "int32", "input"),
    "seq_mask": _f([N_RES], "float32", "input"),
    "target_feat": _f([N_RES, 22], "float32", "input"),
    "msa_feat": _f([N_SEQ, N_RES, 49], "float32", "input"),
    "msa_mask": _f([N_SEQ, N_RES], "float32", "input"),
    "msa_row_mask": _f([N_SEQ], "float32", "input"),
    "bert_mask": _f([N_SEQ, N_RES], "float32", "input"),
    "true_msa": _f([N_SEQ, N_RES], "int32", "input"),
    "extra_msa": _f([N_EXTRA, N_RES], "int32", "input"),
    "extra_msa_mask": _f([N_EXTRA, N_RES], "float32", "input"),
    "extra_msa_row_mask": _f([N_EXTRA], "float32", "input"),
    "extra_has_deletion": _f([N_EXTRA, N_RES], "float32", "input"),
    "extra_deletion_value": _f([N_EXTRA, N_RES], "float32", "input"),
    "template_aatype": _f([N_TEMPL, N_RES], "int32", "input"),
    "template_all_atom_masks": _f([N_TEMPL, N_RES, 37], "float32", "input"),
    "template_all_atom_positions": _f([N_TEMPL, N_RES, 37, 3], "float32", "input"),
    "template_mask": _f([N_TEMPL], "float32", "input"),
    "template_pseudo_beta": _f([N_TEMPL, N_RES, 3], "float32", "input"),
    "template_pseudo_beta_mask": _f([N_TEMPL, N_RES], "float32", "input"),
    "template_sum_probs": _f([N_TEMPL, 1], "float32", "input"),
    # derived on the host from the template atoms (mindsponge_fold.data.derived_features.add_derived_features)
    "template_torsion_angles_sin_cos": _f([N_TEMPL, N_RES, 7, 2], "float32", "input", "pre-omega, phi, psi, chi1-4"),
    "template_alt_torsion_angles_sin_cos": _f([N_TEMPL, N_RES, 7, 2], "float32", "input", "pi-periodic chis + pi"),
    "template_torsion_angles_mask": _f([N_TEMPL, N_RES, 7], "float32", "input"),
    "atom14_atom_exists": _f([N_RES, 14], "float32", "input"),
    "residx_atom14_to_atom37": _f([N_RES, 14], "int32", "input"),
    "residx_atom37_to_atom14": _f([N_RES, 37], "int32", "input"),
    "atom37_atom_exists": _f([N_RES, 37], "float32", "input"),
    "is_distillation": _f([], "float32", "input"),
    "random_crop_to_size_seed": _f([2], "int32", "input"),
}

# Training targets (ground_truth.npz of the reference fixture + use_clamped_fape).
TARGET_FEATURES = {
    "all_atom_positions": _f([N_RES, 37, 3], "float32", "target"),
    "all_atom_mask": _f([N_RES, 37], "float32", "target"),
    "resolution": _f([], "float32", "target"),
    "atom14_gt_positions": _f([N_RES, 14, 3], "float32", "target"),
    "atom14_gt_exists": _f([N_RES, 14], "float32", "target"),
    "atom14_alt_gt_positions": _f([N_RES, 14, 3], "float32", "target"),
    "atom14_alt_gt_exists": _f([N_RES, 14], "float32", "target"),
    "atom14_atom_is_ambiguous": _f([N_RES, 14], "float32", "target"),
    "rigidgroups_gt_frames": _f([N_RES, 8, 12], "float32", "target"),
    "rigidgroups_gt_exists": _f([N_RES, 8], "float32", "target"),
    "rigidgroups_group_exists": _f([N_RES, 8], "float32", "target"),
    "rigidgroups_group_is_ambiguous": _f([N_RES, 8], "float32", "target"),
    "rigidgroups_alt_gt_frames": _f([N_RES, 8, 12], "float32", "target"),
    "torsion_angles_sin_cos": _f([N_RES, 7, 2], "float32", "target"),
    "alt_torsion_angles_sin_cos": _f([N_RES, 7, 2], "float32", "target"),
    "torsion_angles_mask": _f([N_RES, 7], "float32", "target"),
    "chi_angles": _f([N_RES, 4], "float32", "target"),
    "chi_mask": _f([N_RES, 4], "float32", "target"),
    "backbone_affine_tensor": _f([N_RES, 7], "float32", "target"),
    "backbone_affine_mask": _f([N_RES], "float32", "target"),
    "pseudo_beta": _f([N_RES, 3], "float32", "target"),
    "pseudo_beta_mask": _f([N_RES], "float32", "target"),
    "use_clamped_fape": _f([], "float32", "target", "1: clamped backbone FAPE for this sample"),
}

PROCESSED_FEATURES = {**INPUT_FEATURES, **TARGET_FEATURES}

# What the network's forward pass reads (in this order when a positional tuple is unavoidable, e.g. a graph input).
MODEL_INPUTS = (
    "aatype", "residue_index", "seq_mask", "target_feat", "msa_feat", "msa_mask", "bert_mask", "true_msa",
    "extra_msa", "extra_msa_mask", "extra_has_deletion", "extra_deletion_value",
    "template_aatype", "template_all_atom_masks", "template_all_atom_positions", "template_mask",
    "template_pseudo_beta", "template_pseudo_beta_mask",
    "template_torsion_angles_sin_cos", "template_alt_torsion_angles_sin_cos", "template_torsion_angles_mask",
    "atom14_atom_exists", "residx_atom14_to_atom37", "residx_atom37_to_atom14", "atom37_atom_exists",
)

# What the network reads of MODEL_INPUTS: always, and with templates enabled. The template torsion features are not
# among them: ModelRunner derives them on the host from the template atoms (data.derived_features).
NETWORK_INPUTS = ("aatype", "residue_index", "seq_mask", "target_feat", "msa_feat", "msa_mask", "extra_msa",
                  "extra_msa_mask", "extra_has_deletion", "extra_deletion_value", "atom14_atom_exists",
                  "atom37_atom_exists")
NETWORK_TEMPLATE_INPUTS = ("template_aatype", "template_all_atom_positions", "template_all_atom_masks",
                           "template_mask", "template_pseudo_beta", "template_pseudo_beta_mask")


# Index features: how many classes their values select from (one-hot depth or table size). A value outside
# [0, classes) would select nothing (a zero one-hot row) or fail deep inside the feature pipeline.
INDEX_CLASSES = {
    "aatype": 21,                     # 20 amino acids + X (raw: a one-hot of 0/1, inside the range too)
    "msa": 22,                        # HHblits ids: 20 amino acids + X + gap
    "extra_msa": 23,                  # ... + the mask token
    "template_aatype": 22,
    "residx_atom14_to_atom37": 37,
    "residx_atom37_to_atom14": 14,
}


def check_dtypes(features: dict, spec: dict, source=None) -> None:
    """Integer features hold integers, float features numbers, string features bytes/str."""
    for name, value in features.items():
        if name not in spec:
            continue
        dtype = np.asarray(value).dtype
        want = spec[name].dtype
        kinds = "SUO" if want == "bytes" else "biu" if want.startswith("int") else "biuf"
        if dtype.kind not in kinds:
            raise InputError(f"feature '{name}' has dtype {dtype}, expected {want}", source)


def check_values(features: dict, spec: dict, source=None) -> None:
    """Float features are finite; index features (INDEX_CLASSES) lie in [0, classes); deletion counts are >= 0."""
    for name, value in features.items():
        if name not in spec or spec[name].dtype == "bytes":
            continue
        arr = np.asarray(value)
        if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
            raise InputError(f"feature '{name}' holds NaN or infinite values", source)
        if name in INDEX_CLASSES and spec[name].dtype.startswith("int") and arr.size:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < 0 or hi >= INDEX_CLASSES[name]:
                raise InputError(f"feature '{name}' has values in [{lo}, {hi}], expected indices in "
                                 f"[0, {INDEX_CLASSES[name] - 1}]", source)
        if name == "deletion_matrix_int" and arr.size and arr.min() < 0:
            raise InputError(f"feature '{name}' has negative deletion counts", source)


def resolve_shape(name: str, sizes: dict, spec: dict | None = None) -> tuple:
    feat = (spec or PROCESSED_FEATURES)[name]
    return tuple(sizes[d] if isinstance(d, str) else d for d in feat.dims)


def infer_sizes(features: dict, spec: dict | None = None, source: str | None = None, batch_dims: int = 0) -> dict:
    """Infer the symbolic dims from arrays; raise InputError when two features disagree."""
    spec = spec or PROCESSED_FEATURES
    sizes: dict = {}
    for name, value in features.items():
        if name not in spec:
            continue
        arr = np.asarray(value)
        dims = spec[name].dims
        shape = arr.shape[batch_dims:]
        if len(shape) != len(dims):
            raise InputError(f"feature '{name}' has shape {arr.shape}, expected {len(dims)} dims {dims}"
                             + (f" after {batch_dims} batch dims" if batch_dims else ""), source)
        for d, n in zip(dims, shape):
            if isinstance(d, str):
                if sizes.setdefault(d, n) != n:
                    raise InputError(f"feature '{name}' has {d}={n}, other features have {d}={sizes[d]}", source)
            elif d != n:
                raise InputError(f"feature '{name}' has shape {arr.shape}, expected {dims}", source)
    return sizes


def validate(features: dict, required=(), spec: dict | None = None, source=None, batch_dims: int = 0) -> dict:
    """Check names, ranks, fixed dims, symbolic-dim consistency and dtype kinds; return the inferred sizes."""
    missing = [n for n in required if n not in features]
    if missing:
        raise InputError(f"missing feature(s): {', '.join(missing)}", source)
    sizes = infer_sizes(features, spec, source, batch_dims)
    check_dtypes(features, spec or PROCESSED_FEATURES, source)
    return sizes


def pad_features(features: dict, sizes: dict, spec: dict | None = None, batch_dims: int = 0) -> dict:
    """Zero-pad every feature of the table to ``sizes`` (symbolic dim -> target). Features not in the table pass.

    Padding is at the end of each dim; masks padded with 0 mark the padding. Shrinking is an error (crop first).
    """
    spec = spec or PROCESSED_FEATURES
    out = {}
    for name, value in features.items():
        if name not in spec:
            out[name] = value
            continue
        arr = np.asarray(value)
        target = resolve_shape(name, {**infer_sizes({name: arr}, spec, batch_dims=batch_dims), **sizes}, spec)
        cur = arr.shape[batch_dims:]
        if any(t < c for t, c in zip(target, cur)):
            raise ValueError(f"cannot pad feature '{name}' of shape {cur} down to {target}")
        pad = [(0, 0)] * batch_dims + [(0, t - c) for t, c in zip(target, cur)]
        out[name] = np.pad(arr, pad) if any(p[1] for p in pad) else arr
    return out


def bucket_size(n: int, buckets) -> int:
    """Smallest bucket >= n (n itself when it exceeds every bucket)."""
    for b in sorted(buckets):
        if b >= n:
            return int(b)
    return int(n)
