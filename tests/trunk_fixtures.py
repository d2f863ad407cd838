"""Shared by the trunk tests: AlphaFold-name parameter loading, the reference batch, error measures."""
import json

import mindspore as ms
import numpy as np
from mindspore import Tensor

from helpers import reference_path

def load_af_params(cell, npz_dict) -> int:
    """Load the trunk (``evoformer`` inside AlphaFoldIteration) from official names; strict. Returns the count."""
    from mindsponge_fold.model.params import load_submodule_params
    return len(load_submodule_params(cell, npz_dict, "evoformer."))


def reference_config():
    from mindsponge_fold.common.config import load_alphafold_config_file
    return load_alphafold_config_file(reference_path("config.json"))


def reference_batch(r: int) -> dict:
    """processed_features batch ``r`` (no batch axis) + the host-derived template torsion features, as numpy."""
    from mindsponge_fold.data.derived_features import add_derived_features
    feats = np.load(reference_path("processed_features.npz"))
    return add_derived_features({k: feats[k][r] for k in feats.files})


def to_tensors(batch: dict, names) -> dict:
    """Graph-mode input dict. ``mutable``: otherwise graph mode treats the dict's tensors as constants (a recompile
    per call, with constant folding)."""
    return ms.mutable({k: Tensor(np.asarray(batch[k])) for k in names})


def rel_errors(got, ref) -> dict:
    d = np.asarray(got, np.float64) - np.asarray(ref, np.float64)
    ref = np.asarray(ref, np.float64)
    return {"max_rel": float(np.abs(d).max() / np.abs(ref).max()),
            "rms_rel": float(np.sqrt((d ** 2).mean()) / np.sqrt((ref ** 2).mean()))}


def tolerance(name: str) -> dict:
    tols = json.loads(reference_path("suggested_tolerances.json").read_text())
    t = tols[name]
    return {"max_rel": t["max_abs_over_max_ref"], "rms_rel": t["rms_over_rms_ref"]}


def randomize(cell, rng, scale=0.3):
    """Random non-trivial parameters (zero-initialised layers too); LayerNorm scales around 1. Returns
    {relative path: numpy array}."""
    out = {}
    for path, prm in cell.parameters_and_names():
        value = rng.standard_normal(prm.shape).astype(np.float32) * scale
        if path.endswith(".scale"):
            value = 1.0 + value
        prm.set_data(Tensor(value))
        out[path] = value
    return out


def sub(params: dict, prefix: str) -> dict:
    """The entries of ``params`` under ``prefix.``, with the prefix removed."""
    return {k[len(prefix) + 1:]: v for k, v in params.items() if k.startswith(prefix + ".")}


def np_ln(x, p):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + 1e-5) * p["scale"] + p["offset"]


def np_linear(x, p):
    return x @ p["weights"] + p["bias"]


def np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))
