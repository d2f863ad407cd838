"""Template features (supplement 1.2.3): template structures from mmCIF, realigned onto the query residues.

Two ways in:
* search hits (``TemplateHitFeaturizer``): hits of hhsearch (.hhr) or hmmsearch (Stockholm) name a PDB chain;
  its mmCIF is read from ``mmcif_dir``, hits released after ``max_template_date`` are dropped, and when the hit's
  sequence is not found in the mmCIF SEQRES the hit is realigned to it with kalign (>= 90% identity required),
  as AlphaFold does;
* direct templates (``direct_template_features``): ``mmcif_path`` + chain + an explicit query->template index map,
  or one computed by a BLOSUM62 global alignment (``blosum62_query_to_template``).

Per template: template_aatype [L, 22] one-hot in HHblits order, template_all_atom_positions [L, 37, 3],
template_all_atom_masks [L, 37], template_sequence (template residue per query position, '-' where unaligned),
template_domain_names (b"<pdb>_<chain>"), template_sum_probs [1].
"""
from __future__ import annotations

import dataclasses
import datetime
import re
from pathlib import Path

import numpy as np

from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data import mmcif as mmcif_lib
from mindsponge_fold.data import parsers

TEMPLATE_FEATURES = {
    "template_aatype": np.float32,
    "template_all_atom_masks": np.float32,
    "template_all_atom_positions": np.float32,
    "template_domain_names": bytes,
    "template_sequence": bytes,
    "template_sum_probs": np.float32,
}


class TemplateError(Exception):
    """A template hit that cannot be used (reported as an error or warning, the hit is skipped)."""


@dataclasses.dataclass(frozen=True)
class TemplateSearchResult:
    features: dict
    errors: list
    warnings: list


def parse_date(text: str, what: str = "max_template_date") -> datetime.datetime:
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%d")
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a date YYYY-MM-DD, got {text!r}") from None


# --------------------------------------------------------------------------------------------- alignment helpers

def blosum62_query_to_template(query: str, template: str, open_gap: float = -10.0,
                               extend_gap: float = -0.5) -> np.ndarray:
    """query->template residue index map (-1 = unaligned) of a BLOSUM62 global alignment (end gaps penalised
    like inner gaps; EMBOSS needle's defaults open 10 / extend 0.5). Letters outside BLOSUM62 count as X."""
    from Bio import Align
    from Bio.Align import substitution_matrices
    matrix = substitution_matrices.load("BLOSUM62")
    known = set(matrix.alphabet)
    aligner = Align.PairwiseAligner(mode="global", substitution_matrix=matrix, open_gap_score=open_gap,
                                    extend_gap_score=extend_gap)
    clean = ["".join(c if c in known else "X" for c in s) for s in (query, template)]
    alignment = aligner.align(*clean)[0]
    mapping = np.full(len(query), -1, dtype=np.int64)
    for (q0, q1), (t0, _) in zip(*alignment.aligned):
        mapping[q0:q1] = np.arange(t0, t0 + q1 - q0)
    return mapping


def _same_residue(hit_letter: str, query_letter: str) -> bool:
    """A hit's copy of a query residue matches it: equal, X on either side, or a query letter outside the 20 amino
    acids (search tools may rewrite those)."""
    return hit_letter == query_letter or "X" in (hit_letter, query_letter) or query_letter not in rc.restypes


def check_hits_match_query(hits: list, query_sequence: str, source=None) -> None:
    """Every hit of a template search file must have been computed for this query: an .hhr hit's query residues are
    the query's at the indices it states, an hmmsearch hit spans one column per query residue. A hit file of another
    query is an InputError naming the file (the whole file is refused, not the hit skipped: a search output belongs
    to one query, so one foreign hit means the file is not this query's)."""
    n = len(query_sequence)
    for hit in hits:
        if hit.sum_probs is None:       # hmmsearch: aligned to the query's profile, one column per query residue
            if len(hit.indices_hit) != n:
                raise InputError(f"template hit {hit.index} ({hit.name}) spans {len(hit.indices_hit)} profile columns "
                                 f"but the query has {n} residues: the hits were computed for another query", source)
            continue
        for letter, qi in zip(hit.query, hit.indices_query):
            if qi >= 0 and (qi >= n or not _same_residue(letter, query_sequence[qi])):
                found = f"the query has {query_sequence[qi]!r}" if qi < n else f"the query has only {n} residues"
                raise InputError(f"template hit {hit.index} ({hit.name.split()[0]}) aligns query residue {qi + 1} as "
                                 f"{letter!r} but {found}: the hits were computed for another query", source)


def mapping_from_hit(hit: parsers.TemplateHit, query_sequence: str) -> dict:
    """{query index: hit residue index} of a search hit, corrected for the part of the query the hit covers.
    A hit whose query part does not occur in ``query_sequence`` (a hit of another query) is a TemplateError."""
    if not hit.query:
        return {}
    hit_query = hit.query.replace("-", "")
    hit_seq = hit.hit_sequence.replace("-", "")
    offset = query_sequence.find(hit_query)
    if offset < 0:
        raise TemplateError(f"the hit's query part {hit_query[:30]!r} does not occur in the query sequence (a hit "
                            f"of another query)")
    min_hit = min(x for x in hit.indices_hit if x > -1)
    min_query = min(x for x in hit.indices_query if x > -1)
    mapping = {}
    for qi, ti in zip(hit.indices_query, hit.indices_hit):
        if qi == -1 or ti == -1:
            continue
        qi, ti = qi - min_query, ti - min_hit
        if ti < len(hit_seq) and qi + offset < len(query_sequence):
            mapping[qi + offset] = ti
    return mapping


def _find_in_mmcif(chain: str, template_sequence: str, mmcif) -> tuple:
    """(SEQRES, chain id, offset of template_sequence in it): same chain exact, any chain exact, X-wildcard match."""
    seq = mmcif.chain_to_seqres.get(chain)
    if seq and template_sequence in seq:
        return seq, chain, seq.find(template_sequence)
    for cid, seq in mmcif.chain_to_seqres.items():
        if seq and template_sequence in seq:
            return seq, cid, seq.find(template_sequence)
    regex = re.compile("".join("." if aa == "X" else f"(?:{aa}|X)" for aa in template_sequence))
    for cid, seq in mmcif.chain_to_seqres.items():
        match = regex.search(seq)
        if match:
            return seq, cid, match.start()
    return None


def realign_to_mmcif(old_sequence: str, chain: str, mmcif, old_mapping: dict, kalign) -> tuple:
    """Map a hit onto the SEQRES actually in the mmCIF (kalign of hit vs SEQRES, >= 90% identity required).

    Returns (new template sequence, {query index: SEQRES index or -1})."""
    new_sequence = mmcif.chain_to_seqres.get(chain, "")
    if not new_sequence:
        if len(mmcif.chain_to_seqres) != 1:
            raise TemplateError(f"chain {chain} not found in {mmcif.file_id} (or not a protein chain)")
        new_sequence = next(iter(mmcif.chain_to_seqres.values()))
    try:
        aligned = parsers.parse_a3m(kalign.align([old_sequence, new_sequence]), "kalign output").sequences
    except Exception as e:  # noqa: BLE001 - any failure of the aligner means this hit is unusable
        raise TemplateError(f"could not align {old_sequence} to {mmcif.file_id}_{chain}: {e}") from e
    old_to_new, same, i_old, i_new = {}, 0, -1, -1
    for a, b in zip(*aligned):
        i_old += a != "-"
        i_new += b != "-"
        if a != "-" and b != "-":
            old_to_new[i_old] = i_new
            same += a == b
    if same / min(len(old_sequence), len(new_sequence)) < 0.9:
        raise TemplateError(f"hit sequence {old_sequence} is < 90% identical to {mmcif.file_id}_{chain}: "
                            f"{new_sequence}")
    return new_sequence, {q: old_to_new.get(t, -1) for q, t in old_mapping.items()}


# ------------------------------------------------------------------------------------------------ feature making

def extract_template_features(mmcif, pdb_id: str, mapping: dict, template_sequence: str, query_sequence: str,
                              chain: str, kalign=None) -> tuple:
    """Features of one template chain on the query positions ``mapping`` (query index -> template index).

    ``template_sequence`` is the hit's sequence; when it is not in the mmCIF SEQRES the hit is realigned with
    ``kalign`` (a Kalign instance). Returns (features, warning or None); raises TemplateError."""
    warning = None
    found = _find_in_mmcif(chain, template_sequence, mmcif)
    if found is not None:
        _, chain, offset = found
    else:
        warning = (f"the exact sequence {template_sequence} was not found in {pdb_id}_{chain}; "
                   "realigned the template to the actual sequence")
        if kalign is None:
            raise TemplateError(f"{pdb_id}_{chain}: hit sequence not in the mmCIF and no kalign to realign it")
        template_sequence, mapping = realign_to_mmcif(template_sequence, chain, mmcif, mapping, kalign)
        offset = 0
    try:
        positions, masks = mmcif_lib.get_atom_positions(mmcif, chain, max_ca_ca_distance=150.0)
    except (InputError, KeyError) as e:
        raise TemplateError(f"could not get atom data of {pdb_id}_{chain}: {e}") from e
    num_res = len(query_sequence)
    t_pos = np.zeros([num_res, rc.atom_type_num, 3])
    t_mask = np.zeros([num_res, rc.atom_type_num])
    t_seq = ["-"] * num_res
    for q, t in mapping.items():
        if t == -1:   # AlphaFold indexes [-1 + offset] here; an unaligned query residue keeps zeros instead
            continue
        t_pos[q] = positions[t + offset]
        t_mask[q] = masks[t + offset]
        t_seq[q] = template_sequence[t]
    if t_mask.sum() < 5:   # fewer atoms than one alanine
        raise TemplateError(f"template {pdb_id}_{chain} has no atoms on the aligned residues")
    t_seq = "".join(t_seq)
    features = {
        "template_all_atom_positions": t_pos,
        "template_all_atom_masks": t_mask,
        "template_sequence": t_seq.encode(),
        "template_aatype": rc.sequence_to_onehot(t_seq, rc.HHBLITS_AA_TO_ID),
        "template_domain_names": f"{pdb_id.lower()}_{chain}".encode(),
    }
    return features, warning


def empty_template(num_res: int) -> dict:
    """AlphaFold 2.3's placeholder when an hmmsearch template search yields nothing: zeros, empty name."""
    return {
        "template_aatype": np.zeros((num_res, 22), np.float32),
        "template_all_atom_masks": np.zeros((num_res, rc.atom_type_num), np.float32),
        "template_all_atom_positions": np.zeros((num_res, rc.atom_type_num, 3), np.float32),
        "template_domain_names": b"",
        "template_sequence": b"",
        "template_sum_probs": np.zeros((1,), np.float32),
    }


def stack_template_features(templates: list, num_res: int) -> dict:
    """Stack per-template feature dicts along a new leading axis (shape-correct zero-size arrays when none)."""
    if not templates:
        return {
            "template_aatype": np.zeros((0, num_res, 22), np.float32),
            "template_all_atom_masks": np.zeros((0, num_res, rc.atom_type_num), np.float32),
            "template_all_atom_positions": np.zeros((0, num_res, rc.atom_type_num, 3), np.float32),
            "template_domain_names": np.zeros((0,), "S1"),
            "template_sequence": np.zeros((0,), "S1"),
            "template_sum_probs": np.zeros((0, 1), np.float32),
        }
    out = {}
    if all("template_release_date" in t for t in templates):     # optional: training sets record it
        out["template_release_date"] = np.array([t["template_release_date"] for t in templates], dtype="S")
    for name, dtype in TEMPLATE_FEATURES.items():
        values = [t[name] for t in templates]
        out[name] = np.array(values, dtype="S") if dtype is bytes else np.stack(values).astype(dtype)
    return out


def direct_template_features(query_sequence: str, mmcif_path, chain: str, query_to_template=None,
                             sum_probs: float = 0.0) -> dict:
    """One template from ``mmcif_path`` chain ``chain`` (author or label id).

    ``query_to_template``: sequence of length L with template SEQRES indices (-1 = unaligned), 'identity', or None
    for a BLOSUM62 global alignment of the query to the chain's SEQRES."""
    mmcif = mmcif_lib.parse_mmcif(mmcif_path)
    auth = mmcif_lib.resolve_chain(mmcif, chain)
    seqres = mmcif.chain_to_seqres[auth]
    num_res = len(query_sequence)
    if query_to_template is None:
        q2t = blosum62_query_to_template(query_sequence, seqres)
    elif isinstance(query_to_template, str) and query_to_template == "identity":
        if len(seqres) != num_res:
            raise InputError(f"identity mapping needs equal lengths: query {num_res}, chain {auth} {len(seqres)}",
                             mmcif_path)
        q2t = np.arange(num_res)
    else:
        q2t = np.asarray(query_to_template, dtype=np.int64)
        lo, hi = (int(q2t.min()), int(q2t.max())) if q2t.size else (-1, -1)
        if q2t.shape != (num_res,) or lo < -1 or hi >= len(seqres):
            raise InputError(f"query->template map must have {num_res} entries in [-1, {len(seqres) - 1}], got "
                             f"shape {q2t.shape} range [{lo}, {hi}]", mmcif_path)
    mapping = {int(q): int(t) for q, t in enumerate(q2t) if t >= 0}
    try:
        features, _ = extract_template_features(mmcif, mmcif.file_id, mapping, seqres, query_sequence, auth)
    except TemplateError as e:
        raise InputError(str(e), mmcif_path) from None
    if not np.asarray(features["template_all_atom_masks"])[..., rc.atom_order["CA"]].any():
        raise InputError(f"chain {auth}: none of the residues aligned to the query has a CA atom: the template "
                         "holds no structure", mmcif_path)
    features["template_sum_probs"] = np.array([sum_probs], np.float32)
    return features


# ----------------------------------------------------------------------------------------- search-hit featurizer

def _pdb_id_and_chain(hit: parsers.TemplateHit) -> tuple:
    match = re.match(r"[a-zA-Z\d]{4}_[a-zA-Z0-9.]+", hit.name)
    if not match:
        raise TemplateError(f"hit name does not start with <pdbid>_<chain>: {hit.name}")
    pdb_id, chain = match.group(0).split("_")
    return pdb_id.lower(), chain


DUPLICATE_SUBSEQUENCE_RATIO = 0.95      # AlphaFold's max_subsequence_ratio


def is_duplicate_of_query(hit_sequence: str, query_sequence: str,
                          max_subsequence_ratio: float = DUPLICATE_SUBSEQUENCE_RATIO) -> bool:
    """AlphaFold's duplicate prefilter (supplement 1.2.3; its ``_assess_hhsearch_hit``): a hit whose ungapped
    sequence occurs exactly inside the query and is longer than ``max_subsequence_ratio`` of it is the query's own
    structure (or a copy of it in the PDB), not a template."""
    template = hit_sequence.replace("-", "")
    return template in query_sequence and len(template) / len(query_sequence) > max_subsequence_ratio


def parse_release_dates(path) -> dict:
    """{pdb id: datetime} from a 'pdbid: YYYY-MM-DD' text file."""
    out = {}
    for number, line in enumerate(parsers.read_text(path).splitlines(), start=1):
        if line.strip():
            pdb_id, _, date = line.partition(":")
            try:
                out[pdb_id.strip()] = datetime.datetime.strptime(date.strip()[:10], "%Y-%m-%d")
            except ValueError:
                raise InputError("expected '<pdb id>: YYYY-MM-DD'", path, number) from None
    return out


def parse_obsolete(path) -> dict:
    """{obsolete pdb id: replacement id or None} from PDB's obsolete.dat."""
    out = {}
    for line in parsers.read_text(path).splitlines():
        line = line.strip()
        if line.startswith("OBSLTE"):
            if len(line) > 30:
                out[line[20:24].lower()] = line[29:33].lower()
            elif len(line) == 24:
                out[line[20:24].lower()] = None
    return out


@dataclasses.dataclass
class TemplateHitFeaturizer:
    """Search hits -> template features, best ``sum_probs`` first, at most ``max_hits`` templates.

    hmmsearch-style hits (no sum_probs; AlphaFold 2.3's HmmsearchHitFeaturizer) keep their order, skip a template
    whose template_sequence repeats an earlier one, and give one all-zero template (empty name) when nothing is
    usable; ``dedup_sequences`` forces the dedup either way. Prefilters as AlphaFold: release date after
    ``max_template_date``, aligned fraction <= 10% of the query, a duplicate of the query
    (:func:`is_duplicate_of_query`, when ``max_subsequence_ratio`` is set), hit shorter than 10 residues. A hit
    whose mmCIF is missing or unusable is skipped with a warning. ``mmcif_files`` ({pdb id: path}, custom
    templates) replaces the lookup of ``mmcif_dir``/<pdb id>.cif: a hit of another entry is skipped."""
    mmcif_dir: str
    max_template_date: str
    max_hits: int = 20
    kalign: object = None
    release_dates: dict = dataclasses.field(default_factory=dict)
    obsolete_pdbs: dict = dataclasses.field(default_factory=dict)
    dedup_sequences: bool | None = None     # None: only for hmmsearch-style hits
    # duplicate filter: reject a hit that is the query itself (an exact sub-sequence covering more than this
    # fraction of it). None: off (predict's default: the fixture tests read the query's own entry as template 0);
    # make-training-set uses AlphaFold's 0.95 (DUPLICATE_SUBSEQUENCE_RATIO)
    max_subsequence_ratio: float | None = None
    record_release_dates: bool = False      # add template_release_date (YYYY-MM-DD bytes) per template
    strict_error_check: bool = False
    mmcif_files: dict | None = None

    def __post_init__(self):
        if self.mmcif_files is None and not Path(self.mmcif_dir).is_dir():
            raise InputError("mmCIF directory not found", self.mmcif_dir)
        self._cutoff = parse_date(self.max_template_date)

    def _prefilter(self, hit, pdb_id: str, query_sequence: str) -> str | None:
        if pdb_id in self.release_dates and self.release_dates[pdb_id] > self._cutoff:
            return f"release date {self.release_dates[pdb_id].date()} > max template date {self._cutoff.date()}"
        if hit.aligned_cols / len(query_sequence) <= 0.1:
            return f"aligned fraction {hit.aligned_cols / len(query_sequence):.3f} <= 0.1"
        if self.max_subsequence_ratio is not None and is_duplicate_of_query(
                hit.hit_sequence, query_sequence, self.max_subsequence_ratio):
            return (f"duplicate of the query: its sequence is a sub-sequence of the query covering > "
                    f"{self.max_subsequence_ratio:.0%} of it")
        if len(hit.hit_sequence.replace("-", "")) < 10:
            return "template shorter than 10 residues"
        return None

    def process_hit(self, query_sequence: str, hit) -> tuple:
        """(features or None, error or None, warning or None) for one hit."""
        pdb_id, chain = _pdb_id_and_chain(hit)
        if self.obsolete_pdbs.get(pdb_id, "") is None:
            return None, None, f"hit {pdb_id} is obsolete"
        if pdb_id not in self.release_dates and pdb_id in self.obsolete_pdbs:
            pdb_id = self.obsolete_pdbs[pdb_id]
        reason = self._prefilter(hit, pdb_id, query_sequence)
        if reason:
            return None, (f"{pdb_id}_{chain}: {reason}" if self.strict_error_check else None), None
        if self.mmcif_files is not None and pdb_id not in self.mmcif_files:
            return None, None, f"{pdb_id}_{chain} (rank {hit.index}): not among the given template files"
        cif = self.mmcif_files[pdb_id] if self.mmcif_files is not None else Path(self.mmcif_dir) / f"{pdb_id}.cif"
        try:
            mmcif = mmcif_lib.parse_mmcif(cif)
        except InputError as e:
            return None, None, f"{pdb_id}_{chain} (rank {hit.index}): {e}"
        date = mmcif.header.get("release_date")
        if date and parse_date(date, "release date") > self._cutoff:
            msg = f"{pdb_id}_{chain}: release date {date} > max template date {self._cutoff.date()}"
            return None, (msg if self.strict_error_check else None), None
        try:
            features, warning = extract_template_features(
                mmcif, pdb_id, mapping_from_hit(hit, query_sequence), hit.hit_sequence.replace("-", ""),
                query_sequence, chain, self.kalign)
        except TemplateError as e:
            return None, f"{pdb_id}_{chain} (rank {hit.index}): {e}", None
        features["template_sum_probs"] = np.array([hit.sum_probs or 0.0], np.float32)
        if self.record_release_dates:
            features["template_release_date"] = (date or "").encode()
        return features, None, warning

    def get_templates(self, query_sequence: str, hits: list) -> TemplateSearchResult:
        hmmsearch_style = bool(hits) and hits[0].sum_probs is None
        dedup = hmmsearch_style if self.dedup_sequences is None else self.dedup_sequences
        if hits and not hmmsearch_style:
            hits = sorted(hits, key=lambda h: h.sum_probs, reverse=True)
        templates, errors, warnings, seen = [], [], [], set()
        for hit in hits:
            if len(templates) >= self.max_hits:
                break
            features, error, warning = self.process_hit(query_sequence, hit)
            errors += [error] if error else []
            warnings += [warning] if warning else []
            if features is None:
                continue
            if dedup:
                if features["template_sequence"] in seen:
                    continue
                seen.add(features["template_sequence"])
            templates.append(features)
        if not templates and hmmsearch_style:
            templates = [empty_template(len(query_sequence))]
        return TemplateSearchResult(stack_template_features(templates, len(query_sequence)), errors, warnings)
