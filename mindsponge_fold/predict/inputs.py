"""What ``predict`` works on: targets (one per FASTA record or one features file) and where their alignments are.

Checks happen here, before anything runs or is written: residue letters (the 20 standard amino acids; with
``--allow-unknown`` other letters become X, unknown, as in AlphaFold), empty and over-long sequences, duplicate
target names, and that every target has alignments (or will get them from a search, or runs single-sequence).
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.common.fileio import load_npz
from mindsponge_fold.data import parsers, pipeline
from mindsponge_fold.data.transforms import REQUIRED_RAW, canonical_raw_features

STANDARD = set(rc.restypes)
ALIGNMENT_NAMES = (tuple(n for _, names in pipeline.MSA_FILES for n in names) + (pipeline.MMSEQS2_FILE,)
                   + pipeline.TEMPLATE_HIT_FILES)


@dataclasses.dataclass(frozen=True)
class Target:
    """One prediction job. ``features`` (a loaded raw or processed feature dict) replaces the data pipeline."""
    name: str
    sequence: str
    description: str
    source: str                       # FASTA or features file (for messages)
    features: dict | None = None

    @property
    def processed(self) -> bool:
        """True when ``features`` are already the model's processed input (they hold ``msa_feat``)."""
        return self.features is not None and "msa_feat" in self.features


def target_name(description: str) -> str:
    """A file-system safe target name: the first word of the FASTA header, other characters replaced by '_'."""
    word = description.split()[0] if description.split() else ""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", word).lstrip(".") or "query"


def check_sequence(name: str, sequence: str, source, max_length: int | None, allow_unknown: bool) -> None:
    if not sequence:
        raise InputError(f"target '{name}': empty sequence", source)
    if max_length is not None and len(sequence) > max_length:
        raise InputError(f"target '{name}': {len(sequence)} residues, more than the maximum length {max_length} "
                         f"(--max-length)", source)
    if not allow_unknown:
        bad = next((i for i, a in enumerate(sequence) if a not in STANDARD), None)
        if bad is not None:
            raise InputError(f"target '{name}': residue {sequence[bad]!r} at position {bad + 1} is not one of the "
                             f"20 standard amino acids (--allow-unknown models it as X, unknown)", source)


def read_fasta_targets(paths, max_length: int | None = None, allow_unknown: bool = False) -> list[Target]:
    """Every record of every FASTA file, checked; names must be unique."""
    targets = []
    for path in paths:
        text = parsers.read_text(path)
        for desc, seq in parsers.parse_query_fasta(text, path, allow_multiple=True, warn_nucleotides=True):
            name = target_name(desc)
            check_sequence(name, seq, path, max_length, allow_unknown)
            targets.append(Target(name, seq, desc, str(path)))
    seen = {}
    for t in targets:
        if t.name in seen:
            raise InputError(f"two targets are named '{t.name}' (in {seen[t.name]} and {t.source}); target names "
                             f"(first word of the FASTA header) must be unique", t.source)
        seen[t.name] = t.source
    return targets


def read_features_target(path, name: str | None = None, max_length: int | None = None,
                         allow_unknown: bool = False) -> Target:
    """A target from a features .npz: AlphaFold raw features (data pipeline output) or processed features (model
    input, leading recycling axis). The sequence comes from ``aatype``."""
    path = Path(path)
    features = load_npz(path, "features")
    if "aatype" not in features:
        raise InputError("not a features file: no 'aatype' (expected AlphaFold raw features, the data pipeline's "
                         "output, or processed features, the network's input)", path)
    if "msa_feat" not in features:      # raw: the names and shapes the feature pipeline needs (processed features
        try:                            # are checked against each model's config: model.runner.check_model_inputs)
            canonical_raw_features(features, path)
        except InputError as e:
            raise InputError(f"unusable features: {e.problem} (raw features, the data pipeline's output, need "
                             f"{', '.join(REQUIRED_RAW)}; processed features, the network's input, hold 'msa_feat')",
                             path) from None
    aatype = np.asarray(features["aatype"])
    if "msa_feat" in features:          # processed: [batch, N_res] indices
        indices = aatype[0] if aatype.ndim == 2 else aatype
    else:                               # raw: [N_res, 21] one-hot
        indices = aatype.argmax(-1) if aatype.ndim == 2 else aatype
    sequence = "".join(rc.restypes_with_x[min(int(i), rc.restype_num)] for i in indices)
    if name is None and "domain_name" in features and features["domain_name"].size:
        name = target_name(features["domain_name"].ravel()[0].decode("utf-8", "replace"))
    name = name or target_name(path.stem)
    check_sequence(name, sequence, path, max_length, allow_unknown)
    return Target(name, sequence, name, str(path), features)


def alignment_dir_for(target: Target, alignments_dir, single_target: bool) -> Path | None:
    """``<alignments_dir>/<target>/`` when it exists; for a single target also the flat directory itself when it
    holds alignment files under AlphaFold's names; else None."""
    if alignments_dir is None:
        return None
    root = Path(alignments_dir)
    if (root / target.name).is_dir():
        return root / target.name
    if single_target and any((root / n).exists() for n in ALIGNMENT_NAMES):
        return root
    return None


def check_alignments_available(targets, alignments_dir, can_search: bool, single_sequence: bool) -> None:
    """Every target must have alignments, or MSA search databases must be given, or single-sequence mode."""
    if alignments_dir is not None and not Path(alignments_dir).is_dir():
        raise InputError("alignment directory not found", alignments_dir)
    if single_sequence or can_search:
        return
    for t in targets:
        if t.features is None and alignment_dir_for(t, alignments_dir, len(targets) == 1) is None:
            where = (f"no alignments for target '{t.name}' under {alignments_dir} (expected "
                     f"{Path(alignments_dir) / t.name}/ with files named as AlphaFold's, e.g. uniref90_hits.sto)"
                     if alignments_dir else f"no alignments for target '{t.name}'")
            raise InputError(where + "; give --alignments-dir, search databases (--uniref90-database ...), or "
                                     "--single-sequence", t.source)


def msa_file_for(target: Target, msa) -> Path:
    """The ``--msa`` a3m of ``target``: the file itself (one target), or ``<msa>/<target>.a3m`` in a directory."""
    path = Path(msa)
    return path / f"{target.name}.a3m" if path.is_dir() else path


def read_colabfold_a3m(path) -> parsers.Msa:
    """A ColabFold-style a3m: the query first (under any name, e.g. '>101'), possibly a '#' header line and NUL
    separators between the sections of its databases (removed), each section starting with the query again."""
    path = Path(path)
    if not path.is_file():
        raise InputError("no such a3m file (--msa)", path)
    return parsers.parse_a3m(parsers.read_text(path).replace("\x00", ""), path)


def check_msa_option(settings, num_targets: int) -> None:
    """``--msa`` (``settings``: the run's PredictSettings) replaces every search: it goes with FASTA targets and no
    other source of alignments; one file serves one target."""
    msa = settings.inputs.msa
    if not msa:
        return
    clash = [flag for flag, given in (("--features", settings.features),
                                      ("--alignments-dir", settings.inputs.alignments_dir),
                                      ("--single-sequence", settings.inputs.single_sequence),
                                      ("search databases", settings.inputs.search.can_search)) if given]
    if clash:
        raise InputError(f"--msa is the whole MSA of each target: it cannot be combined with {clash[0]}")
    if not Path(msa).exists():
        raise InputError("no such a3m file or directory (--msa)", msa)
    if num_targets > 1 and not Path(msa).is_dir():
        raise InputError("--msa names one a3m file but there are several targets: give a directory of "
                         "<target>.a3m files (named by the first word of each FASTA header)", msa)
