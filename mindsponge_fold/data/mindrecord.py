"""Raw AlphaFold features (+ atom37 labels) <-> sharded MindRecord files, with a manifest and resumable conversion.

Record layout, derived from the raw-feature table (:data:`mindsponge_fold.data.feature_shapes.RAW_FEATURES`):

* ``name`` (string) and ``seq_length`` (int32) are the index fields (``seq_length`` replaces the raw feature of the
  same name, which is just L repeated L times);
* a numeric feature with one variable dim is stored in its own shape with -1 there (``all_atom_positions`` ->
  ``[-1, 37, 3]``); with several variable dims (MindRecord allows one -1 per field) it is flattened to ``[-1]``;
  every non-scalar feature also gets ``<name>__shape`` (int32), so empty arrays and flattened ones come back exactly;
* string features (``|S`` arrays) are stored as their fixed-width bytes with ``<name>__shape`` = shape + itemsize;
* ``present`` (string) lists the features the sample has; absent ones are written as empty placeholders.

Conversion (:func:`convert`): samples (sorted by name) go to shard ``i % num_shards``. Each shard file is written in a
temporary directory beside the output and moved into place when complete; the manifest
(``<out>.manifest.json``, written atomically) marks a shard done only after that. Re-running skips shards that are
done and whose inputs (sha256) are unchanged, so a crash costs at most the shards in progress.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np

from mindsponge_fold.common.errors import InputError, warn
from mindsponge_fold.common.fileio import check_output_file, write_json
from mindsponge_fold.data import feature_shapes as fs
from mindsponge_fold.data.transforms import canonical_raw_features

FORMAT = "mindsponge_fold.mindrecord/1"
SCHEMA_NAME = "alphafold_raw_features"
INDEX_FIELDS = ("name", "seq_length")
SHAPE_SUFFIX = "__shape"
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pkl.gz", ".pickle.gz")
FEATURE_SUFFIXES = (".npz",) + PICKLE_SUFFIXES
_MR_TYPES = {"int32": "int32", "int64": "int64", "float32": "float32", "float64": "float64"}


# ----------------------------------------------------------------------------------------------- record codec

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


# ----------------------------------------------------------------------------------------------- reading inputs

def sha256_file(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _is_pickle(path: Path) -> bool:
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
    if _is_pickle(path):
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


# ----------------------------------------------------------------------------------------------- conversion

MANIFEST_SUFFIX = ".manifest.json"


def out_prefix(out) -> Path:
    """The ``--out`` path, given it or its manifest."""
    text = str(out)
    return Path(text[:-len(MANIFEST_SUFFIX)] if text.endswith(MANIFEST_SUFFIX) else text)


def manifest_path(out) -> Path:
    return Path(str(out_prefix(out)) + MANIFEST_SUFFIX)


def shard_filename(out, index: int, num_shards: int) -> str:
    return f"{Path(out).name}-{index:05d}-of-{num_shards:05d}"


def _fingerprint(samples, hashes, options) -> str:
    h = hashlib.sha256(repr((FORMAT, sorted(mindrecord_schema().items()), options)).encode())
    for name, _ in samples:
        h.update(f"{name}:{hashes[name]};".encode())
    return h.hexdigest()


def load_manifest(out) -> dict | None:
    import json

    path = manifest_path(out)
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"manifest is not valid JSON ({e.msg}); delete it to reconvert", path) from None
    except UnicodeDecodeError:
        raise InputError("manifest is not valid JSON (binary data); delete it to reconvert", path) from None
    except OSError as e:
        raise InputError(f"cannot read the manifest ({e.strerror})", path) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"not a {FORMAT} manifest", path)
    return manifest


def _shard_done(manifest, index, fingerprint, out) -> bool:
    if not manifest:
        return False
    entry = manifest["shards"][index]
    if entry.get("status") != "done" or entry.get("fingerprint") != fingerprint:
        return False
    return entry["file"] is None or all((Path(out).parent / (entry["file"] + ext)).is_file() for ext in ("", ".db"))


def _remove_stale(out) -> None:
    """Temporary shard directories left by a crashed conversion."""
    for p in Path(out).parent.glob(f".{Path(out).name}.tmp-*"):
        shutil.rmtree(p, ignore_errors=True)


MIN_PAGE, MAX_PAGE = 1 << 20, 1 << 28       # MindRecord page size limits used here (a record must fit one page)
MIN_HEADER = 1 << 18
_HEADER_BYTES_PER_PAGE = 512                # the shard header grows ~200 B per page; keep a margin


class _Relayout(Exception):
    """A record or a shard header did not fit the layout: every shard must be rewritten with a larger one (all
    shards of a dataset must share page and header sizes, or MindDataset refuses to read them together)."""

    def __init__(self, layout: dict):
        super().__init__(layout)
        self.layout = layout


def _pow2_at_least(n: float, low: int) -> int:
    return max(low, 1 << max(0, int(np.ceil(np.log2(max(n, 1))))))


def record_nbytes(row: dict) -> int:
    return sum(len(v) if isinstance(v, (bytes, str)) else np.asarray(v).nbytes for v in row.values())


def estimate_nbytes(path) -> int:
    """Rough uncompressed size of a feature file (npz members' sizes; pickles: file size)."""
    path = Path(path)
    try:
        if path.name.endswith(".npz"):
            with zipfile.ZipFile(path) as z:
                return sum(i.file_size for i in z.infolist())
        return path.stat().st_size * (4 if path.name.endswith(".gz") else 1)
    except (OSError, zipfile.BadZipFile):
        return 0


def plan_layout(plan, sizes: dict) -> dict:
    """Page size fitting the largest sample, header size fitting the largest shard's page count."""
    page = _pow2_at_least(1.25 * max([sizes[n] for shard in plan for n, _ in shard] or [0]), MIN_PAGE)
    pages = max(sum(sizes[n] for n, _ in shard) for shard in plan) * 2 / page + 64
    return {"page_size": page, "header_size": _pow2_at_least(_HEADER_BYTES_PER_PAGE * pages, MIN_HEADER)}


def _grown(layout: dict, **changes) -> dict:
    return {k: max(v, changes.get(k, v)) for k, v in layout.items()}


def _write_shard_file(tmp_file: Path, samples, options, layout, on_sample):
    from mindspore.mindrecord import FileWriter

    writer, entries, skipped = None, {}, {}

    def guarded(call, *args):
        try:
            call(*args)
        except Exception as e:  # noqa: BLE001 - MindRecord raises RuntimeError/MRMError subclasses
            if "header is too big" in str(e):
                raise _Relayout(_grown(layout, header_size=layout["header_size"] * 8)) from None
            raise
    for name, path in samples:
        features, entry = load_sample(name, path, options["allow_pickle"], options["mmcif_dir"])
        limit = options["max_seq_length"]
        if limit and entry["seq_length"] > limit:
            skipped[name] = f"seq_length {entry['seq_length']} > max_seq_length {limit}"
        else:
            row = encode_record(name, features, path)
            size = record_nbytes(row)
            if size > 0.8 * layout["page_size"]:
                if size > 0.8 * MAX_PAGE:
                    raise InputError(f"sample of {size / 2 ** 20:.0f} MiB exceeds MindRecord's page limit "
                                     f"({MAX_PAGE >> 20} MiB); reduce its MSA depth", path)
                raise _Relayout(_grown(layout, page_size=_pow2_at_least(1.25 * size, MIN_PAGE)))
            if writer is None:
                writer = FileWriter(str(tmp_file), shard_num=1, overwrite=True)
                writer.set_page_size(layout["page_size"])
                writer.set_header_size(layout["header_size"])
                writer.add_schema(mindrecord_schema(), SCHEMA_NAME)
                writer.add_index(list(INDEX_FIELDS))
            guarded(writer.write_raw_data, [row])
            entries[name] = entry
        on_sample()
    if writer is not None:
        guarded(writer.commit)
    return writer is not None, entries, skipped


def _write_shard(out: Path, index: int, num_shards: int, samples, options: dict, layout: dict, progress) -> dict:
    """Write one shard in a temporary directory, then move it into place. Returns its manifest entry."""
    fname = shard_filename(out, index, num_shards)
    final = out.parent / fname
    for ext in ("", ".db"):
        Path(str(final) + ext).unlink(missing_ok=True)
    tmpdir = out.parent / f".{out.name}.tmp-{index:05d}-{os.getpid()}"
    shutil.rmtree(tmpdir, ignore_errors=True)
    tmpdir.mkdir(parents=True)
    try:
        written, entries, skipped = _write_shard_file(tmpdir / fname, samples, options, layout,
                                                      lambda: progress.update(1))
        if written:
            for ext in ("", ".db"):
                os.replace(tmpdir / (fname + ext), Path(str(final) + ext))
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    entries = {n: dict(e, shard=index) for n, e in entries.items()}
    return {"file": fname if written else None, "status": "done", "num_samples": len(entries),
            "samples": sorted(entries), "skipped": skipped, "entries": entries}


def convert(features_dir, out, num_shards: int = 1, mmcif_dir=None, allow_pickle: bool = False,
            max_seq_length: int | None = None, progress: bool = True, chain_table=None) -> dict:
    """Convert every feature file of ``features_dir`` into ``num_shards`` MindRecord files ``<out>-KKKKK-of-NNNNN``
    plus ``<out>.manifest.json``; resumes an interrupted conversion. Returns the manifest. A conversion refused
    before its first shard leaves no directory behind; one that skips every sample warns (the dataset is empty).
    ``chain_table``: make-training-set's ``chains.tsv``; each sample's row (cluster id / size, resolution, release
    date) is stored in its manifest entry for the sampler (:mod:`.sampling`)."""
    from mindsponge_fold.data.sampling import annotate_samples, check_table_lists, read_chain_table
    table = read_chain_table(chain_table) if chain_table is not None else None
    if num_shards < 1:
        raise InputError(f"--shards must be >= 1, got {num_shards}")
    if max_seq_length is not None and max_seq_length < 1:
        raise InputError(f"--max-seq-length must be >= 1, got {max_seq_length}")
    out = Path(out)
    check_output_file(manifest_path(out), "MindRecord output")
    inputs = discover_inputs(features_dir)
    if table is not None:
        check_table_lists([name for name, _ in inputs], table, chain_table)
    if not allow_pickle:
        for _, path in inputs:
            if _is_pickle(path):
                load_feature_file(path, allow_pickle=False)      # raises the one-line error
    manifest = load_manifest(out)
    if manifest and manifest["num_shards"] != num_shards:
        raise InputError(f"an earlier conversion used {manifest['num_shards']} shards; use --shards "
                         f"{manifest['num_shards']} or delete {manifest_path(out).name} and its shards",
                         manifest_path(out))
    created = not out.parent.exists()
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        manifest = _convert(inputs, out, num_shards, manifest, mmcif_dir, allow_pickle, max_seq_length, progress)
    except BaseException:
        if created and not any(out.parent.iterdir()):     # refused before anything was written: leave no directory
            out.parent.rmdir()
        raise
    if annotate_samples(manifest, table, chain_table):
        write_json(manifest_path(out), manifest, indent=1)
    skipped = [n for s in manifest["shards"] for n in s.get("skipped", {})]
    if skipped and not manifest["samples"]:
        warn(f"every sample ({len(skipped)}) was skipped, longer than max_seq_length {max_seq_length}: the dataset "
             "is empty", manifest_path(out))
    return manifest


def _convert(inputs, out: Path, num_shards: int, manifest, mmcif_dir, allow_pickle, max_seq_length,
             progress) -> dict:
    from tqdm import tqdm

    options = {"mmcif_dir": None if mmcif_dir is None else str(mmcif_dir), "allow_pickle": bool(allow_pickle),
               "max_seq_length": max_seq_length}
    hashes = {name: sha256_file(path) for name, path in inputs}
    plan = [inputs[k::num_shards] for k in range(num_shards)]
    layout = plan_layout(plan, {name: estimate_nbytes(path) for name, path in inputs})
    if manifest is None:
        manifest = {"format": FORMAT, "num_shards": num_shards, "schema": SCHEMA_NAME, "layout": layout,
                    "shards": [{"status": "pending", "file": None} for _ in range(num_shards)], "samples": {}}
    layout = _grown(manifest.get("layout", layout), **layout)     # keep an earlier (larger) layout on resume
    _remove_stale(out)
    while True:
        manifest["layout"] = layout
        prints = [_fingerprint(plan[k], hashes, dict(options, **layout)) for k in range(num_shards)]
        todo = [k for k in range(num_shards) if not _shard_done(manifest, k, prints[k], out)]
        try:
            with tqdm(total=sum(len(plan[k]) for k in todo), disable=not progress, unit="sample",
                      desc=f"make-mindrecord {out.name}") as bar:
                for k in todo:
                    _record_shard(out, manifest, k, prints[k],
                                  _write_shard(out, k, num_shards, plan[k], options, layout, bar))
            return manifest
        except _Relayout as r:       # a sample did not fit: rewrite everything with the larger layout
            layout = r.layout


def _record_shard(out, manifest: dict, index: int, fingerprint: str, entry: dict) -> None:
    """Mark shard ``index`` done in the manifest (written atomically)."""
    entries = entry.pop("entries")
    manifest["shards"][index] = dict(entry, fingerprint=fingerprint)
    samples = {n: e for n, e in manifest["samples"].items() if e.get("shard") != index}
    samples.update(entries)
    manifest["samples"] = dict(sorted(samples.items()))
    write_json(manifest_path(out), manifest, indent=1)


# ----------------------------------------------------------------------------------------------- reading back

def dataset_files(out) -> list[str]:
    """The shard files of a finished conversion (``out`` = the ``--out`` path or its manifest)."""
    out = out_prefix(out)
    manifest = load_manifest(out)
    if manifest is None:
        if out.is_file():
            raise InputError(f"not a make-mindrecord --out path: no {manifest_path(out).name} beside this file "
                             "(give the --out path of make-mindrecord)", out)
        raise InputError("no manifest (run make-mindrecord first)", manifest_path(out))
    pending = [i for i, s in enumerate(manifest["shards"]) if s.get("status") != "done"]
    if pending:
        raise InputError(f"conversion incomplete: shard(s) {pending} not done; rerun make-mindrecord",
                         manifest_path(out))
    return [str(out.parent / s["file"]) for s in manifest["shards"] if s["file"]]


def check_shard_files(files) -> None:
    """Each shard file (and its ``.db`` index) exists and opens as MindRecord: a damaged or replaced shard is a
    one-line InputError naming it, not MindSpore's multi-line pipeline error once training has started."""
    from mindspore.mindrecord import FileReader
    for name in files:
        for path in (Path(name), Path(f"{name}.db")):
            if not path.is_file():
                raise InputError("MindRecord shard file missing; rerun make-mindrecord", path)
        try:
            FileReader(str(name)).close()
        except Exception as e:  # noqa: BLE001 - MindRecord raises RuntimeError/MRMError with multi-line text
            lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
            detail = next((ln for ln in lines if ln.startswith("[ERROR]")), lines[0] if lines else type(e).__name__)
            raise InputError(f"not a readable MindRecord shard ({detail.removeprefix('[ERROR]').strip()}); rerun "
                             "make-mindrecord", name) from None


def read_samples(out) -> dict:
    """Every sample of a conversion as ``{name: raw features}`` (reads all shards; for tools and tests)."""
    import mindspore.dataset as ds

    samples = {}
    data = ds.MindDataset(dataset_files(out), columns_list=record_columns(), shuffle=False)
    for row in data.create_dict_iterator(output_numpy=True, num_epochs=1):
        name, features = decode_record(row)
        samples[name] = features
    return samples
