"""Test-side loader: copy the reference fixture's official AlphaFold weights (params.npz) into a Cell by the naming
rule of the model code conventions (attribute path -> ``alphafold/alphafold_iteration/<path>//<name>``)."""
import numpy as np
from mindspore import Tensor

ROOT = "alphafold/alphafold_iteration/"


def official_name(path: str) -> str:
    """'structure_module.fold_iteration.transition.weights' -> official flat key."""
    parts = ["__layer_stack_no_state" if p == "layer_stack" else p for p in path.split(".")]
    return ROOT + "/".join(parts[:-1]) + "//" + parts[-1]


def load_reference_params(cell, prefix: str, params) -> list:
    """Set every parameter of ``cell`` (whose attribute path inside AlphaFoldIteration starts with ``prefix``) from
    the npz mapping ``params``. Fails on a missing key or a shape mismatch; returns the official keys used."""
    used = []
    for prm in cell.get_parameters():
        key = official_name(prefix + prm.name)
        assert key in params, f"no reference weight {key} for parameter {prm.name}"
        value = np.asarray(params[key], np.float32)
        assert tuple(value.shape) == tuple(prm.shape), (key, value.shape, prm.shape)
        prm.set_data(Tensor(value))
        used.append(key)
    return used
