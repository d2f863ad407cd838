"""A training set from PDB chains (AlphaFold 2 supplement 1.2.5 filters and clusters; 1.2.3 training templates).

:func:`build_training_set` takes a directory of mmCIFs and a directory of per-chain alignments (one sub-directory
``<pdb_id>_<chain>`` per chain, AlphaFold's file names, as :class:`~mindsponge_fold.data.pipeline.DataPipeline`
reads them) and writes into ``out_dir``:

* ``features/<chain_id>.npz`` (``chain_id`` = ``<pdb_id lower-case>_<chain>``): the raw features of every accepted
  chain with its labels (atom37 coordinates, mask, resolution: ``pipeline.make_ground_truth_features``) and its
  ``release_date``, the form ``make-mindrecord --features-dir`` reads;
* ``chains.tsv``: the chain table of the accepted chains (:mod:`mindsponge_fold.data.chain_table`) with their
  cluster (:mod:`mindsponge_fold.data.clustering`);
* ``report.tsv``: ``chain_id status reason`` of every chain considered, status ``ok``, ``filtered`` or ``error``
  (a bad chain is skipped and listed there; it never ends the run);
* ``state/<chain_id>.json``: what each chain was built from, so a rerun skips chains whose inputs and settings
  are unchanged (template structures are not part of that key).

Filters (supplement 1.2.5, cheapest first): release date before ``max_release_date`` (the PDB training set ends
2018-04-30), resolution below ``max_resolution`` (9 A; entries without a resolution, NMR, pass), at least
``min_length`` residues, and no residue type above ``max_single_residue_fraction`` (80%) of the chain.

Templates (supplement 1.2.3) come from the chain's template-hit files (pdb70_hits.hhr, pdb_hits.sto,
hmm_output.sto) through AlphaFold's hit featurizer, restricted per chain to structures released before the chain
(so never the chain's own entry) and without duplicates of the query (``templates.is_duplicate_of_query``); each
keeps its ``template_release_date`` so the training loader can filter again.
"""
from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import datetime
import hashlib
import json
import logging
import multiprocessing
import re
import tempfile
from pathlib import Path

import numpy as np

from mindsponge_fold.common.errors import InputError, ToolError, warn
from mindsponge_fold.common.fileio import check_output_dir, save_npz, write_json, write_text
from mindsponge_fold.data import chain_table, clustering, pipeline, templates
from mindsponge_fold.data import mmcif as mmcif_lib

CHAIN_DIR = re.compile(r"^([0-9A-Za-z]{4})_([A-Za-z0-9]+)$")
TEMPLATE_HIT_FILES = (*pipeline.TEMPLATE_HIT_FILES, "hmm_output.sto")
STATE_FORMAT = "mindsponge_fold.training_set_chain/1"
REPORT_HEADER = "chain_id\tstatus\treason"
OK, FILTERED, ERROR = "ok", "filtered", "error"


@dataclasses.dataclass(frozen=True)
class TrainingSetSettings:
    """Inputs, filters (defaults: supplement 1.2.5), clustering and templates of ``make-training-set``."""
    mmcif_dir: str
    alignment_dir: str
    out_dir: str
    chains: tuple = ()                       # only these chain ids (default: every alignment sub-directory)
    cluster_file: str | None = None          # clusters-by-entity-40.txt style; None: greedy identity clustering
    cluster_identity: float = 0.4
    cluster_coverage: float = 0.8
    max_resolution: float = 9.0              # keep resolution < this (A)
    max_release_date: str = "2018-04-30"     # keep chains released before this
    min_length: int = 10
    max_single_residue_fraction: float = 0.8
    templates: bool = True
    template_mmcif_dir: str | None = None    # None: mmcif_dir
    max_templates: int = 20                  # featurised hits per chain (the loader samples 4 of them)
    kalign_binary: str = "kalign"
    workers: int = 1
    progress: bool = True

    def feature_key(self) -> dict:
        """The settings a chain's features and status depend on (part of its resume key)."""
        keys = ("max_resolution", "max_release_date", "min_length", "max_single_residue_fraction", "templates",
                "max_templates")
        return {k: getattr(self, k) for k in keys} | {"template_dir": str(self.template_mmcif_dir or self.mmcif_dir)}


@dataclasses.dataclass(frozen=True)
class ChainOutcome:
    """What happened to one chain (``length`` ... ``sequence`` are known for accepted chains)."""
    chain_id: str
    status: str
    reason: str = ""
    length: int = 0
    resolution: float | None = None
    release_date: str = ""
    entity: str = ""                 # PDBID_ENTITYID
    sequence: str = ""


@dataclasses.dataclass(frozen=True)
class TrainingSetResult:
    outcomes: tuple                  # ChainOutcome per chain considered, by chain id
    records: tuple                   # chain_table.ChainRecord per accepted chain
    rebuilt: int                     # chains processed in this run
    unchanged: int                   # chains skipped: built before from the same inputs and settings


# ----------------------------------------------------------------------------------------------- per chain

def find_mmcif(mmcif_dir, pdb_id: str) -> Path | None:
    for name in (pdb_id.lower(), pdb_id.upper(), pdb_id):
        for ext in (".cif", ".mmcif"):
            if (Path(mmcif_dir) / f"{name}{ext}").is_file():
                return Path(mmcif_dir) / f"{name}{ext}"
    return None


def chain_filter_reason(sequence: str, resolution: float, release_date: str, s: TrainingSetSettings) -> str | None:
    """Why supplement 1.2.5's filters reject a chain (None: accepted)."""
    if release_date >= s.max_release_date:
        return f"released {release_date}, not before --max-release-date {s.max_release_date}"
    if resolution > 0 and resolution >= s.max_resolution:
        return f"resolution {resolution:g} A, not below --max-resolution {s.max_resolution:g}"
    if len(sequence) < s.min_length:
        return f"{len(sequence)} residues, fewer than --min-length {s.min_length}"
    residue, count = collections.Counter(sequence).most_common(1)[0]
    if count / len(sequence) > s.max_single_residue_fraction:
        return (f"residue {residue} is {count / len(sequence):.0%} of the chain, above "
                f"--max-single-residue-fraction {s.max_single_residue_fraction:g}")
    return None


def _day_before(date: str) -> str:
    return (datetime.date.fromisoformat(date) - datetime.timedelta(days=1)).isoformat()


def _featurizer(s: TrainingSetSettings, release_date: str):
    if not s.templates:
        return None
    from mindsponge_fold.data.tools import Kalign
    return templates.TemplateHitFeaturizer(
        mmcif_dir=str(s.template_mmcif_dir or s.mmcif_dir), max_template_date=_day_before(release_date),
        max_hits=s.max_templates, kalign=Kalign(s.kalign_binary),
        max_subsequence_ratio=templates.DUPLICATE_SUBSEQUENCE_RATIO, record_release_dates=True)


def chain_features(chain_id: str, cif: Path, msa_dir: Path, s: TrainingSetSettings) -> tuple:
    """``(outcome, features or None)`` of one chain: filters first, then the raw features with labels."""
    pdb_id, chain = chain_id.split("_", 1)
    mmcif = mmcif_lib.parse_mmcif(cif)
    auth = mmcif_lib.resolve_chain(mmcif, chain)
    sequence, header = mmcif.chain_to_seqres[auth], mmcif.header
    if not header.get("release_date"):
        raise InputError("no release date (_pdbx_audit_revision_history) in this mmCIF", cif)
    release_date = str(header["release_date"])[:10]
    resolution = float(header["resolution"])
    facts = dict(length=len(sequence), resolution=resolution if resolution > 0 else None,
                 release_date=release_date, entity=f"{pdb_id.upper()}_{mmcif.chain_to_entity.get(auth, auth)}",
                 sequence=sequence)
    reason = chain_filter_reason(sequence, resolution, release_date, s)
    if reason:
        return ChainOutcome(chain_id, FILTERED, reason, **facts), None
    hit_files = [msa_dir / n for n in TEMPLATE_HIT_FILES if (msa_dir / n).is_file()] if s.templates else []
    data = pipeline.DataPipeline(template_featurizer=_featurizer(s, release_date))
    with tempfile.TemporaryDirectory(prefix="msf_chain_") as tmp:
        fasta = Path(tmp) / f"{chain_id}.fasta"
        fasta.write_text(f">{chain_id}\n{sequence}\n")
        features = data.process(fasta, msa_dir, template_hit_files=hit_files or None, ground_truth=(cif, auth),
                                query_warnings=False)
    features["release_date"] = np.array([release_date.encode()])
    n = features["template_aatype"].shape[0]
    if "template_release_date" not in features:
        features["template_release_date"] = np.zeros((n,), "S1")
    return ChainOutcome(chain_id, OK, f"{n} templates", **facts), features


@contextlib.contextmanager
def _quiet_template_log():
    """The pipeline logs every skipped template hit (most hits of a training chain are: later than the chain, or
    their mmCIF is not in the directory); in a training-set run that is noise."""
    logger = logging.getLogger(pipeline.__name__)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _one_line(e: BaseException) -> str:
    text = str(e) if isinstance(e, (InputError, ToolError)) else f"{type(e).__name__}: {e}"
    return (text.strip().splitlines() or [type(e).__name__])[0]


def build_chain(chain_id: str, msa_dir: Path, key: str, s: TrainingSetSettings) -> ChainOutcome:
    """Build one chain's features file and state; any failure becomes an ``error`` outcome (never raised)."""
    out = Path(s.out_dir)
    target = out / "features" / f"{chain_id}.npz"
    try:
        cif = find_mmcif(s.mmcif_dir, chain_id.split("_", 1)[0])
        if cif is None:
            raise InputError(f"no mmCIF {chain_id.split('_', 1)[0]}.cif", s.mmcif_dir)
        with _quiet_template_log():
            outcome, features = chain_features(chain_id, cif, Path(msa_dir), s)
        if features is not None:
            save_npz(target, features)
    except Exception as e:  # noqa: BLE001 - one bad chain is reported, the run goes on
        outcome = ChainOutcome(chain_id, ERROR, _one_line(e))
    if outcome.status != OK:
        target.unlink(missing_ok=True)           # make-mindrecord must not pick up a stale sample
    write_json(out / "state" / f"{chain_id}.json",
               {"format": STATE_FORMAT, "key": key, "outcome": dataclasses.asdict(outcome)})
    return outcome


# ----------------------------------------------------------------------------------------------- the set

def _hash_files(h, paths) -> None:
    for path in paths:
        h.update(path.name.encode() + b"\0")
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)


def input_key(chain_id: str, msa_dir: Path, s: TrainingSetSettings) -> str:
    """sha256 of the chain's mmCIF, its alignment files and the settings its features depend on."""
    h = hashlib.sha256(json.dumps(s.feature_key(), sort_keys=True).encode())
    cif = find_mmcif(s.mmcif_dir, chain_id.split("_", 1)[0])
    files = ([cif] if cif else []) + (sorted(p for p in msa_dir.iterdir() if p.is_file()) if msa_dir.is_dir() else [])
    _hash_files(h, files)
    return h.hexdigest()


def _unchanged(chain_id: str, key: str, out: Path) -> ChainOutcome | None:
    path = out / "state" / f"{chain_id}.json"
    try:
        state = json.loads(path.read_text())
        if state.get("format") != STATE_FORMAT or state.get("key") != key:
            return None
        outcome = ChainOutcome(**state["outcome"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if outcome.status == ERROR or (outcome.status == OK and not (out / "features" / f"{chain_id}.npz").is_file()):
        return None                               # errors are retried; a lost features file is rebuilt
    return outcome


def discover_chains(s: TrainingSetSettings) -> tuple:
    """``({chain id: alignment sub-directory}, {chain id: error outcome})``: the ``<pdb_id>_<chain>``
    sub-directories of the alignment directory (chain id: pdb id lower-cased), or only those of ``s.chains`` (a
    requested chain without a directory is an error outcome)."""
    root = Path(s.alignment_dir)
    if not root.is_dir():
        raise InputError("alignment directory not found", root)
    if not Path(s.mmcif_dir).is_dir():
        raise InputError("mmCIF directory not found", s.mmcif_dir)
    found = {f"{m.group(1).lower()}_{m.group(2)}": p for p in sorted(root.iterdir())
             if p.is_dir() and (m := CHAIN_DIR.match(p.name))}
    if not s.chains:
        if not found:
            raise InputError("no <pdb_id>_<chain> alignment sub-directories", root)
        return found, {}
    wanted, bad = {}, {}
    for chain_id in dict.fromkeys(s.chains):
        m = CHAIN_DIR.match(chain_id)
        key = f"{m.group(1).lower()}_{m.group(2)}" if m else chain_id
        if key in found:
            wanted[key] = found[key]
        else:
            bad[key] = ChainOutcome(key, ERROR, "not <pdb_id>_<chain>" if not m else f"no alignment directory {key}"
                                    f" in {root}")
    return wanted, bad


def assign_clusters(accepted: list, s: TrainingSetSettings) -> dict:
    """``{chain id: cluster id}`` from the cluster file (by entity) or the built-in identity clustering."""
    if s.cluster_file:
        by_entity = clustering.read_cluster_file(s.cluster_file)
        out = {o.chain_id: by_entity.get(o.entity.upper(), o.entity.upper()) for o in accepted}
        missing = sum(o.entity.upper() not in by_entity for o in accepted)
        if missing:
            warn(f"{missing} accepted chain(s) have an entity the cluster file does not list: each is a cluster of "
                 "its own", s.cluster_file)
        return out
    return clustering.greedy_identity_clusters({o.chain_id: o.sequence for o in accepted}, s.cluster_identity,
                                               s.cluster_coverage)


def _run_chains(todo: list, s: TrainingSetSettings, on_done) -> None:
    if s.workers <= 1 or len(todo) <= 1:
        for task in todo:
            on_done(build_chain(*task, s))
        return
    context = multiprocessing.get_context("spawn")      # no fork of a process that may hold MindSpore threads
    with concurrent.futures.ProcessPoolExecutor(max_workers=s.workers, mp_context=context) as pool:
        futures = {pool.submit(build_chain, *task, s): task[0] for task in todo}
        for future in concurrent.futures.as_completed(futures):
            try:
                outcome = future.result()
            except Exception as e:  # noqa: BLE001 - a worker that died (e.g. killed for memory): that chain only
                outcome = ChainOutcome(futures[future], ERROR, f"worker process failed: {_one_line(e)}")
            on_done(outcome)


def build_training_set(s: TrainingSetSettings) -> TrainingSetResult:
    """Write the training set of ``s`` (see module docstring); returns every chain's outcome."""
    from tqdm import tqdm

    out = Path(s.out_dir)
    check_output_dir(out, "training-set output directory")
    if s.cluster_file:
        clustering.read_cluster_file(s.cluster_file)          # a bad cluster file: said before any work
    chains, outcomes = discover_chains(s)
    todo, unchanged = [], 0
    for chain_id, msa_dir in chains.items():
        try:
            key = input_key(chain_id, msa_dir, s)
        except OSError as e:                      # an unreadable input file: this chain only
            outcomes[chain_id] = ChainOutcome(chain_id, ERROR, _one_line(e))
            continue
        previous = _unchanged(chain_id, key, out)
        if previous is not None:
            outcomes[chain_id] = previous
            unchanged += 1
        else:
            todo.append((chain_id, msa_dir, key))
    (out / "features").mkdir(parents=True, exist_ok=True)
    with tqdm(total=len(todo), disable=not s.progress, unit="chain", desc="make-training-set") as bar:
        def done(outcome):
            outcomes[outcome.chain_id] = outcome
            bar.update(1)
        _run_chains(todo, s, done)
    ordered = tuple(outcomes[c] for c in sorted(outcomes))
    accepted = [o for o in ordered if o.status == OK]
    clusters = assign_clusters(accepted, s)
    sizes = collections.Counter(clusters.values())
    records = tuple(chain_table.ChainRecord(o.chain_id, o.length, o.resolution, o.release_date, clusters[o.chain_id],
                                            sizes[clusters[o.chain_id]]) for o in accepted)
    chain_table.write_chain_table(out / "chains.tsv", records)
    write_text(out / "report.tsv", "\n".join([REPORT_HEADER, *(
        f"{o.chain_id}\t{o.status}\t{o.reason.replace(chr(9), ' ')}" for o in ordered)]) + "\n")
    return TrainingSetResult(ordered, records, len(todo), unchanged)
