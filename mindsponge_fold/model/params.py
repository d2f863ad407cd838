"""AlphaFold weights <-> MindSpore Cell parameters, and the project's checkpoint layout.

The table: a Cell parameter's MindSpore name is its attribute path (``evoformer.evoformer_iteration.
msa_transition.transition1.weights``). Cells are named after AlphaFold's haiku modules and parameters have
AlphaFold's shapes, so the official name follows by one rule:

    official = "alphafold/alphafold_iteration/" + path with "." -> "/", the last separator "//",
               and the path segment "layer_stack" written "__layer_stack_no_state"

and the reshape is the identity (stacked layers keep their leading layer axis in both layouts). :func:`param_table`
lists every row; ``mindsponge-fold params-table`` prints it. Import checks every name and shape both ways: a name
left over on either side is an error that says which, so a weights file for another model (e.g. a ``_ptm`` file for
a model without the PAE head, or a different stack depth) is refused with a one-line message.

Checkpoint layout (one for training and inference): a MindSpore ``.ckpt`` whose entries are the Cell parameter names
(the model's weights), optionally ``ema.<name>`` (EMA weights), optimiser/loss-scale state under ``opt.`` /
``train.`` prefixes, and ``meta.*`` string entries (model name, project version). Inference loads the model weights,
or the EMA weights when asked.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mindsponge_fold.common.errors import InputError
from mindsponge_fold.common.fileio import atomic_path, file_content, save_npz

ROOT = "alphafold/alphafold_iteration/"
SEGMENT_RENAMES = {"layer_stack": "__layer_stack_no_state"}
_INVERSE_RENAMES = {v: k for k, v in SEGMENT_RENAMES.items()}
EMA_PREFIX = "ema."
META_PREFIX = "meta."


def official_name(param_name: str) -> str:
    """MindSpore parameter path -> AlphaFold ``module/path//name``."""
    parts = [SEGMENT_RENAMES.get(p, p) for p in param_name.split(".")]
    return ROOT + "/".join(parts[:-1]) + "//" + parts[-1]


def cell_name(official: str) -> str:
    """AlphaFold ``module/path//name`` -> MindSpore parameter path."""
    if not official.startswith(ROOT) or "//" not in official:
        raise ValueError(f"not an AlphaFold monomer parameter name: {official}")
    module, name = official[len(ROOT):].split("//")
    parts = [_INVERSE_RENAMES.get(p, p) for p in module.split("/")] + [name]
    return ".".join(parts)


def model_parameters(model) -> dict:
    """name -> Parameter for the weights of a model Cell, names RELATIVE to that Cell.

    ``Parameter.name`` is global and gains a prefix when the Cell is later wrapped (e.g. ``model.`` inside
    TupleOutput or a training cell); ``parameters_and_names()`` is relative to the Cell it is called on."""
    return dict(model.parameters_and_names())


def param_table(model) -> list[tuple[str, str, tuple]]:
    """Every row of the mapping: (official name, Cell parameter name, shape)."""
    return sorted((official_name(n), n, tuple(p.shape)) for n, p in model_parameters(model).items())


def check_names(model, official_shapes: dict, source: str | None = None) -> None:
    """Raise InputError unless the official names/shapes and the model's parameters match one to one."""
    ours = {official_name(n): tuple(p.shape) for n, p in model_parameters(model).items()}
    theirs = {k: tuple(v) for k, v in official_shapes.items()}
    extra = sorted(set(theirs) - set(ours))
    missing = sorted(set(ours) - set(theirs))
    if extra or missing:
        parts = []
        if extra:
            parts.append(f"{len(extra)} name(s) this model does not have (first: {extra[0]})")
        if missing:
            parts.append(f"{len(missing)} parameter(s) of this model missing (first: {missing[0]})")
        hint = ""
        if any("predicted_aligned_error_head" in n for n in extra):
            hint = "; the weights have a PAE head: use a *_ptm model config"
        elif any("predicted_aligned_error_head" in n for n in missing):
            hint = "; the model has a PAE head the weights lack: use the non-ptm model config"
        elif any("template" in n for n in extra + missing):
            hint = "; template modules differ: model_1/2 use templates, model_3/4/5 do not"
        raise InputError("weights do not fit this model: " + " and ".join(parts) + hint, source)
    bad = [(k, theirs[k], ours[k]) for k in sorted(ours) if theirs[k] != ours[k]]
    if bad:
        k, t, o = bad[0]
        raise InputError(f"{len(bad)} parameter shape(s) differ, first {k}: file {t} vs model {o} "
                         f"(different stack depth or widths: check the model config)", source)


EXPECTED_WEIGHTS = ("expected AlphaFold parameters (.npz: a zip archive of arrays named " + ROOT + "...) or a "
                    "MindSpore checkpoint (.ckpt)")


def weights_format(path) -> str:
    """How to read a weights file, by its content: 'npz' (a zip archive: AlphaFold parameters) or 'ckpt' (a MindSpore
    checkpoint). A file named .npz that is not a zip archive, or one named otherwise (not .ckpt) that is recognisably
    something else (numpy array, pickle, text, empty), is an InputError saying what it is and what was expected."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"is a directory, not a weights file; {EXPECTED_WEIGHTS}", path)
    if not path.is_file():
        raise InputError("no such weights file", path)
    with open(path, "rb") as f:
        head = f.read(64)
    if head[:2] == b"PK":
        return "npz"
    suffix = path.suffix.lower()
    content = file_content(head)
    if suffix == ".npz":
        raise InputError(f"not a weights file: {content}, named .npz but not a zip archive; {EXPECTED_WEIGHTS}", path)
    if suffix != ".ckpt" and not content.startswith("binary"):
        raise InputError(f"not a weights file: {content}; {EXPECTED_WEIGHTS}", path)
    return "ckpt"


def load_npz_arrays(path) -> dict:
    """The arrays of an AlphaFold parameters .npz; an archive without any AlphaFold parameter name is refused."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except FileNotFoundError:
        raise InputError("no such weights file", path) from None
    except (ValueError, OSError) as e:
        raise InputError(f"not a readable .npz weights file ({e}); {EXPECTED_WEIGHTS}", path) from None
    if not any(k.startswith(ROOT) for k in arrays):
        first = f" (first: {next(iter(arrays))!r})" if arrays else ""
        raise InputError(f"not AlphaFold parameters: an .npz of {len(arrays)} array(s){first}, none named "
                         f"{ROOT}...; {EXPECTED_WEIGHTS}", path)
    return arrays


def load_alphafold_params(model, arrays_or_path, source=None) -> None:
    """Set the model's parameters from AlphaFold-layout arrays (dict or ``.npz`` path); strict both ways."""
    if isinstance(arrays_or_path, (str, Path)):
        source = source or str(arrays_or_path)
        arrays = load_npz_arrays(arrays_or_path)
    else:
        arrays = arrays_or_path
    check_names(model, {k: np.shape(v) for k, v in arrays.items()}, source)
    check_values(arrays, source)
    import mindspore as ms
    for name, p in model_parameters(model).items():
        p.set_data(ms.Tensor(np.asarray(arrays[official_name(name)], dtype=np.float32)))


def check_values(arrays: dict, source=None) -> None:
    """Weights are floating-point and finite: integer arrays (not weights: they used to be cast silently) or NaN/inf
    (a diverged or damaged file) are an InputError naming the first such array."""
    not_float = [k for k, v in arrays.items() if np.asarray(v).dtype.kind != "f"]
    if not_float:
        raise InputError(f"{len(not_float)} array(s) are not floating point, first {not_float[0]} of dtype "
                         f"{np.asarray(arrays[not_float[0]]).dtype}: not model weights", source)
    bad = next((k for k, v in arrays.items() if not np.isfinite(v).all()), None)
    if bad is not None:
        raise InputError(f"array {bad} holds NaN or infinite values: damaged weights (or a diverged training run)",
                         source)


def load_submodule_params(cell, arrays: dict, path_prefix: str = "") -> list:
    """Set every parameter of a sub-Cell (e.g. a StructureModule built on its own) from AlphaFold-layout arrays.
    ``path_prefix`` is the sub-Cell's attribute path inside AlphaFoldIteration ("structure_module.", "evoformer.",
    "" for heads). Strict: a missing name or a shape mismatch raises. Returns the official names used."""
    import mindspore as ms
    used = []
    for name, p in model_parameters(cell).items():
        key = official_name(path_prefix + name)
        if key not in arrays:
            raise KeyError(f"{key} (parameter {name}) is not in the weights")
        value = np.asarray(arrays[key], np.float32)
        if tuple(value.shape) != tuple(p.shape):
            raise ValueError(f"{key}: weights shape {value.shape} != parameter shape {tuple(p.shape)}")
        p.set_data(ms.Tensor(value))
        used.append(key)
    return used


def export_alphafold_params(model) -> dict:
    """The model's parameters as AlphaFold-layout arrays (official names, float32)."""
    return {official_name(n): p.asnumpy().astype(np.float32) for n, p in model_parameters(model).items()}


def save_checkpoint(model, path, meta: dict | None = None, extra: dict | None = None, ema: dict | None = None) -> None:
    """Write the project's checkpoint atomically: model weights, optional EMA weights, extra state, metadata."""
    import mindspore as ms
    entries = [{"name": n, "data": p.data if hasattr(p, "data") else ms.Tensor(p)}
               for n, p in model_parameters(model).items()]
    for n, v in (ema or {}).items():
        entries.append({"name": EMA_PREFIX + n, "data": ms.Tensor(np.asarray(v))})
    for n, v in (extra or {}).items():
        entries.append({"name": n, "data": v if isinstance(v, ms.Tensor) else ms.Tensor(np.asarray(v))})
    append = {META_PREFIX + k: (v if isinstance(v, str) else json.dumps(v)) for k, v in (meta or {}).items()}
    with atomic_path(path, suffix=".ckpt") as tmp:
        ms.save_checkpoint(entries, str(tmp), append_dict=append or None)


def read_checkpoint(path) -> dict:
    """All entries of a checkpoint as numpy arrays (strings for meta entries)."""
    import mindspore as ms
    path = Path(path)
    if not path.exists():
        raise InputError("no such checkpoint", path)
    try:
        raw = ms.load_checkpoint(str(path))
    except Exception as e:  # MindSpore raises ValueError/RuntimeError with multi-line text
        detail = (str(e).splitlines() or [type(e).__name__])[0][:120]
        raise InputError(f"not a readable MindSpore checkpoint ({detail}); {EXPECTED_WEIGHTS}", path) from None
    out = {}
    for k, v in raw.items():
        out[k] = v if isinstance(v, str) else (v.asnumpy() if hasattr(v, "asnumpy") else v)
    return out


def load_checkpoint_into(model, path, use_ema: bool = False) -> dict:
    """Load model (or EMA) weights from our checkpoint; strict on names and shapes. Returns the other entries."""
    entries = read_checkpoint(path)
    prefix = EMA_PREFIX if use_ema else ""
    if use_ema and not any(k.startswith(EMA_PREFIX) for k in entries):
        raise InputError("checkpoint has no EMA weights (ema.*)", path)
    weights = {official_name(k[len(prefix):]): v for k, v in entries.items()
               if k.startswith(prefix) and not _is_aux(k[len(prefix):]) and not isinstance(v, str)}
    load_alphafold_params(model, weights, source=str(path))
    return {k: v for k, v in entries.items()
            if not (k.startswith(prefix) and official_name(k[len(prefix):]) in weights)}


def _is_aux(name: str) -> bool:
    return name.startswith(("ema.", "opt.", "train.", "meta.", "data.", "rng."))


def load_weights(model, path, use_ema: bool = False) -> None:
    """Load weights from an AlphaFold ``.npz`` or our ``.ckpt`` (chosen by content, not only by suffix)."""
    if weights_format(path) == "npz":
        load_alphafold_params(model, path)
    else:
        load_checkpoint_into(model, path, use_ema=use_ema)


def npz_to_checkpoint(model, npz_path, ckpt_path, meta: dict | None = None) -> int:
    load_alphafold_params(model, npz_path)
    save_checkpoint(model, ckpt_path, meta=meta)
    return len(model_parameters(model))


def checkpoint_to_npz(model, ckpt_path, npz_path, use_ema: bool = False) -> int:
    load_checkpoint_into(model, ckpt_path, use_ema=use_ema)
    arrays = export_alphafold_params(model)
    save_npz(npz_path, arrays, compressed=False)
    return len(arrays)
