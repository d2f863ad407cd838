"""The inputs of a MindRecord conversion (:func:`mindsponge_fold.data.mindrecord.convert`): the feature files of a
directory (``DIR/<name>.npz|.pkl`` or ``DIR/<name>/features.npz|.pkl``), each read as canonical raw features, with
labels from the sample's mmCIF where the file has none, and a manifest entry (source, sha256, sizes).
"""
from __future__ import annotations

import gzip
import hashlib
import pickle
import zipfile
from pathlib import Path

import numpy as np

from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data.transforms import canonical_raw_features

PICKLE_SUFFIXES = (".pkl", ".pickle", ".pkl.gz", ".pickle.gz")
FEATURE_SUFFIXES = (".npz",) + PICKLE_SUFFIXES


def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_pickle_file(path: Path) -> bool:
    return any(path.name.endswith(s) for s in PICKLE_SUFFIXES)


def sample_name(path: Path) -> str:
    """``DIR/2crb_A.npz`` -> ``2crb_A``; ``DIR/2crb_A/features.pkl`` -> ``2crb_A``."""
    stem = path.name
    for suffix in sorted(FEATURE_SUFFIXES, key=len, reverse=True):
        if stem.endswith(suffix):
            stem = stem[:-len(suffix)]
            break
    return path.parent.name if stem == "features" else stem


def discover_inputs(features_dir) -> list[tuple[str, Path]]:
    """Feature files of a directory: ``DIR/<name>.npz|.pkl`` or ``DIR/<name>/features.npz|.pkl``, sorted by name.

    Any other top-level file is an error (so a mistyped directory does not convert silently to nothing)."""
    root = Path(features_dir)
    if not root.is_dir():
        raise InputError("features directory not found", root)
    found = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            inner = [entry / f"features{s}" for s in FEATURE_SUFFIXES if (entry / f"features{s}").is_file()]
            found.extend(inner[:1])
        elif any(entry.name.endswith(s) for s in FEATURE_SUFFIXES):
            found.append(entry)
        else:
            raise InputError("not a feature file (expected .npz, or .pkl with --allow-pickle)", entry)
    named = [(sample_name(p), p) for p in found]
    seen = {}
    for name, p in named:
        if name in seen:
            raise InputError(f"sample name '{name}' also comes from {seen[name]}", p)
        seen[name] = p
    if not named:
        raise InputError("no feature files (.npz / .pkl) found", root)
    return sorted(named)


def load_feature_file(path, allow_pickle: bool = False) -> dict:
    """A raw feature dict from ``.npz`` (or a pickled dict, only with ``allow_pickle``), canonicalised."""
    path = Path(path)
    if is_pickle_file(path):
        if not allow_pickle:
            raise InputError("pickle files can run code when loaded; pass --allow-pickle if you trust it", path)
        try:
            opener = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rb") as fh:
                data = pickle.load(fh)
        except Exception as e:  # noqa: BLE001 - unpickling raises anything
            raise InputError(f"cannot unpickle ({type(e).__name__}: {e})".splitlines()[0], path) from None
        if not isinstance(data, dict):
            raise InputError(f"pickle holds a {type(data).__name__}, expected a feature dict", path)
    elif path.name.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=allow_pickle) as z:
                data = {k: z[k] for k in z.files}
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            raise InputError(f"not a valid .npz file ({e})".splitlines()[0], path) from None
        except ValueError as e:
            hint = "; pass --allow-pickle if you trust it" if "allow_pickle" in str(e) else ""
            raise InputError(f"cannot read .npz ({e}{hint})".splitlines()[0], path) from None
    else:
        raise InputError("not a feature file (expected .npz, or .pkl with --allow-pickle)", path)
    features, _ = canonical_raw_features(data, path)
    return features


def attach_mmcif_labels(features: dict, name: str, mmcif_dir, source=None) -> Path:
    """Fill all_atom_positions/all_atom_mask/resolution from ``mmcif_dir/<pdb>.cif`` chain ``<chain>`` of the
    sample name ``<pdb>_<chain>``; the chain's SEQRES must equal the features' sequence. Returns the mmCIF path."""
    from mindsponge_fold.data import mmcif

    if "_" not in name:
        raise InputError(f"sample name '{name}' is not <pdb>_<chain>, cannot find its mmCIF labels", source)
    pdb, chain = name.rsplit("_", 1)
    candidates = [Path(mmcif_dir) / f"{pdb}{ext}" for ext in (".cif", ".mmcif")]
    candidates += [Path(mmcif_dir) / f"{pdb.lower()}.cif", Path(mmcif_dir) / f"{pdb.upper()}.cif"]
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise InputError(f"no mmCIF {pdb}.cif for sample '{name}'", mmcif_dir)
    chain_obj = mmcif.load_chain(path, chain)
    query = features["sequence"].reshape(-1)[0].decode() if "sequence" in features else None
    if query is not None and query != chain_obj.sequence:
        raise InputError(f"chain {chain} sequence ({len(chain_obj.sequence)} residues) differs from the features' "
                         f"sequence ({len(query)} residues) of sample '{name}'", path)
    if chain_obj.atom_positions.shape[0] != features["aatype"].shape[0]:
        raise InputError(f"chain {chain} has {chain_obj.atom_positions.shape[0]} residues, features of '{name}' "
                         f"have {features['aatype'].shape[0]}", path)
    features["all_atom_positions"] = chain_obj.atom_positions.astype(np.float32)
    features["all_atom_mask"] = chain_obj.atom_mask.astype(np.float32)
    features["resolution"] = np.asarray(chain_obj.resolution, np.float32)
    return path


def load_sample(name: str, path, allow_pickle=False, mmcif_dir=None) -> tuple[dict, dict]:
    """Features of one sample plus its manifest entry (source, sha256, sizes)."""
    features = load_feature_file(path, allow_pickle)
    entry = {"source": str(path), "sha256": sha256_file(path)}
    if mmcif_dir is not None and "all_atom_positions" not in features:
        cif = attach_mmcif_labels(features, name, mmcif_dir, path)
        entry.update(labels=str(cif), labels_sha256=sha256_file(cif))
    entry.update(seq_length=int(features["aatype"].shape[0]), num_msa=int(features["msa"].shape[0]),
                 num_templates=int(features["template_aatype"].shape[0]) if "template_aatype" in features else 0,
                 has_labels="all_atom_positions" in features,
                 is_distillation=bool(np.asarray(features.get("is_distillation", 0)).item()))
    return features, entry
