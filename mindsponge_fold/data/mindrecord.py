"""Raw AlphaFold features (+ atom37 labels) <-> sharded MindRecord files, with a manifest and resumable conversion.

The record of one sample is :mod:`mindsponge_fold.data.mindrecord_codec` (schema, encode / decode); the feature files
read are :mod:`mindsponge_fold.data.feature_files`; the names other modules take from here (``encode_record``,
``decode_record``, ``mindrecord_schema``, ``record_columns``, ``load_feature_file``, ``load_sample``) stay importable.

Conversion (:func:`convert`): samples (sorted by name) go to shard ``i % num_shards``. Each shard file is written in a
temporary directory beside the output and moved into place when complete; the manifest
(``<out>.manifest.json``, written atomically) marks a shard done only after that. Re-running skips shards that are
done and whose inputs (sha256) are unchanged, so a crash costs at most the shards in progress.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np

from mindsponge_fold.common.errors import InputError, warn
from mindsponge_fold.common.fileio import check_output_file, write_json
from mindsponge_fold.data.feature_files import (discover_inputs, is_pickle_file, load_feature_file, load_sample,
                                                sha256_file)
from mindsponge_fold.data.mindrecord_codec import (INDEX_FIELDS, SCHEMA_NAME, decode_record, encode_record,
                                                   mindrecord_schema, record_columns)

FORMAT = "mindsponge_fold.mindrecord/1"


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
            if is_pickle_file(path):
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
