"""The MindRecord row of one sample's raw AlphaFold features (+ atom37 labels), derived from the raw-feature table
(:data:`mindsponge_fold.data.feature_shapes.RAW_FEATURES`); the files, manifest and conversion are
:mod:`mindsponge_fold.data.mindrecord`.

* ``name`` (string) and ``seq_length`` (int32) are the index fields (``seq_length`` replaces the raw feature of the
  same name, which is just L repeated L times);
* a numeric feature with one variable dim is stored in its own shape with -1 there (``all_atom_positions`` ->
  ``[-1, 37, 3]``); with several variable dims (MindRecord allows one -1 per field) it is flattened to ``[-1]``;
  every non-scalar feature also gets ``<name>__shape`` (int32), so empty arrays and flattened ones come back exactly;
* string features (``|S`` arrays) are stored as their fixed-width bytes with ``<name>__shape`` = shape + itemsize;
* ``present`` (string) lists the features the sample has; absent ones are written as empty placeholders.
"""
from __future__ import annotations

import numpy as np

from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data import feature_shapes as fs

SCHEMA_NAME = "alphafold_raw_features"
INDEX_FIELDS = ("name", "seq_length")
SHAPE_SUFFIX = "__shape"
_MR_TYPES = {"int32": "int32", "int64": "int64", "float32": "float32", "float64": "float64"}


def _stored_features(spec=None) -> dict:
    spec = spec or fs.RAW_FEATURES
    return {k: v for k, v in spec.items() if k != "seq_length"}


def mindrecord_schema(spec=None) -> dict:
    """MindRecord schema of the raw-feature table (see module docstring)."""
    schema = {"name": {"type": "string"}, "seq_length": {"type": "int32"}, "present": {"type": "string"}}
    for name, feat in _stored_features(spec).items():
        if feat.dtype == "bytes":
            schema[name] = {"type": "bytes"}
            schema[name + SHAPE_SUFFIX] = {"type": "int32", "shape": [len(feat.dims) + 1]}
            continue
        if not feat.dims:
            schema[name] = {"type": _MR_TYPES[feat.dtype]}
            continue
        variable = [isinstance(d, str) for d in feat.dims]
        shape = [-1 if v else d for v, d in zip(variable, feat.dims)] if sum(variable) == 1 else [-1]
        schema[name] = {"type": _MR_TYPES[feat.dtype], "shape": shape}
        schema[name + SHAPE_SUFFIX] = {"type": "int32", "shape": [len(feat.dims)]}
    return schema


def _empty(feat) -> np.ndarray:
    return np.zeros([0 if isinstance(d, str) else d for d in feat.dims], feat.dtype)


def encode_record(name: str, features: dict, source=None) -> dict:
    """Canonical raw features -> one MindRecord row."""
    num_res = int(features["aatype"].shape[0])
    if "seq_length" in features and not np.all(np.asarray(features["seq_length"]) == num_res):
        raise InputError(f"feature 'seq_length' is not {num_res} (the number of residues) everywhere", source)
    row = {"name": name, "seq_length": num_res,
           "present": ",".join(sorted(k for k in features if k in fs.RAW_FEATURES))}
    for key, feat in _stored_features().items():
        arr = np.asarray(features[key]) if key in features else None
        if feat.dtype == "bytes":
            arr = arr if arr is not None else np.zeros([0] * len(feat.dims), "S1")
            row[key] = arr.tobytes()
            row[key + SHAPE_SUFFIX] = np.array(list(arr.shape) + [arr.dtype.itemsize], np.int32)
        elif not feat.dims:
            row[key] = (arr if arr is not None else np.zeros((), feat.dtype)).item()
        else:
            arr = arr if arr is not None else _empty(feat)
            row[key + SHAPE_SUFFIX] = np.array(arr.shape, np.int32)
            stored = mindrecord_schema()[key]["shape"]
            row[key] = np.ascontiguousarray(arr.reshape(-1) if stored == [-1] else arr)
    return row


def decode_record(row: dict) -> tuple[str, dict]:
    """One MindRecord row (dict of numpy arrays, as MindDataset yields them) -> ``(name, raw features)``."""
    name = str(np.asarray(row["name"]).item())
    num_res = int(np.asarray(row["seq_length"]))
    present = [p for p in str(np.asarray(row["present"]).item()).split(",") if p]
    out = {}
    for key in present:
        feat = fs.RAW_FEATURES[key]
        if key == "seq_length":
            out[key] = np.full(num_res, num_res, np.int32)
            continue
        value = np.asarray(row[key])
        if feat.dtype == "bytes":
            shape = [int(x) for x in row[key + SHAPE_SUFFIX]]
            shape, itemsize = shape[:-1], shape[-1]
            nbytes = int(np.prod(shape)) * itemsize
            buf = value.tobytes()[:nbytes].ljust(nbytes, b"\0")   # MindRecord may strip trailing NULs
            out[key] = np.frombuffer(buf, dtype=f"S{max(itemsize, 1)}").reshape(shape).copy()
        elif not feat.dims:
            out[key] = value.astype(feat.dtype).reshape(())
        else:
            shape = tuple(int(x) for x in row[key + SHAPE_SUFFIX])
            if int(np.prod(shape)) == 0:       # empty arrays come back as placeholders
                out[key] = np.zeros(shape, feat.dtype)
            else:
                out[key] = value.astype(feat.dtype, copy=False).reshape(shape)
    return name, out


def record_columns() -> list:
    return list(mindrecord_schema())
