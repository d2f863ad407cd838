"""Parsers for the text formats of the data pipeline: FASTA, A3M, Stockholm, HHR (and hmmsearch A3M hits).

Semantics follow AlphaFold's data pipeline (supplement section 1.2): an MSA is the query row first, then the hits,
each reduced to the query's columns; ``deletion_matrix[i, j]`` counts the residues of row i inserted (a3m lowercase,
Stockholm columns where the query has a gap) just before column j. Malformed input raises ``InputError`` naming the
file, the line and the problem. Every parser takes the text plus an optional ``source`` (the file name used in
messages); ``read_*`` helpers take a path.
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from mindsponge_fold.common.errors import InputError, warn

# What an MSA row may contain once parsed: AlphaFold's HHblits alphabet (A-Z) and the gap.
_BAD_MSA_CHAR = re.compile(r"[^A-Z\-]")
_BAD_A3M_CHAR = re.compile(r"[^A-Za-z\-]")


@dataclasses.dataclass(frozen=True)
class Msa:
    """A parsed MSA: aligned rows (query first, all of the query's length), deletions, row descriptions."""
    sequences: list
    deletion_matrix: np.ndarray   # int32 [num_rows, num_columns]
    descriptions: list
    source: str | None = None     # file it came from (for messages)

    def __post_init__(self):
        n = len(self.sequences)
        if len(self.deletion_matrix) != n or len(self.descriptions) != n:
            raise ValueError(f"Msa fields disagree: {n} sequences, {len(self.deletion_matrix)} deletion rows, "
                             f"{len(self.descriptions)} descriptions")

    def __len__(self):
        return len(self.sequences)

    @property
    def num_columns(self) -> int:
        return len(self.sequences[0]) if self.sequences else 0

    def truncate(self, max_seqs: int) -> "Msa":
        return Msa(list(self.sequences[:max_seqs]), self.deletion_matrix[:max_seqs], list(self.descriptions[:max_seqs]),
                   self.source)


@dataclasses.dataclass(frozen=True)
class TemplateHit:
    """One template hit of a template search (hhsearch .hhr or hmmsearch). Indices are 0-based, -1 = gap."""
    index: int
    name: str
    aligned_cols: int
    sum_probs: float | None
    query: str
    hit_sequence: str
    indices_query: list
    indices_hit: list


def _name(source):
    return None if source is None else str(source)


def read_text(path) -> str:
    """The text of a file as UTF-8; a byte-order mark at its start (some editors write one) is dropped."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except UnicodeDecodeError as e:
        raise InputError(f"not a text file ({e.reason} at byte {e.start})", path) from None
    except OSError as e:
        raise InputError(f"cannot read: {e.strerror}", path) from None


# ----------------------------------------------------------------------------------------------------------- FASTA

class _Record(tuple):
    """(description, sequence, header line number) plus where each sequence line starts, for error messages."""

    def __new__(cls, desc, seq, number, starts):
        obj = super().__new__(cls, (desc, seq, number))
        obj.starts = starts   # [(offset in sequence, line number)]
        return obj

    def line_of(self, pos: int) -> int:
        """Line number holding residue ``pos`` of the (joined) sequence."""
        line = self[2]
        for offset, number in self.starts:
            if offset > pos:
                break
            line = number
        return line


def _fasta_records(text: str, source=None, what: str = "FASTA"):
    """[_Record] of a FASTA/A3M text; blank lines are ignored."""
    records = []
    for number, raw in enumerate(text.removeprefix("\ufeff").splitlines(), start=1):    # (a byte-order mark)
        line = raw.strip()
        if not line:
            continue
        if line.startswith(">"):
            records.append([line[1:], [], number, [], 0])
        elif not records:
            if what == "A3M" and line.startswith("#"):
                continue   # an A3M file may start with a '#' comment line
            raise InputError(f"{what} data before the first '>' header line", source, number)
        else:
            rec = records[-1]
            rec[1].append(line)
            rec[3].append((rec[4], number))
            rec[4] += len(line)
    if not records:
        empty = "empty MSA: " if what == "A3M" else ""
        raise InputError(f"{empty}no {what} records (empty file or no line starting with '>')", source)
    return [_Record(desc, "".join(parts), number, starts) for desc, parts, number, starts, _ in records]


def parse_fasta(text: str, source=None) -> tuple[list, list]:
    """(sequences, descriptions) of a (multi-record) FASTA text, in file order."""
    records = _fasta_records(text, source)
    return [r[1] for r in records], [r[0] for r in records]


NUCLEOTIDES = set("ACGTUN")
MIN_NUCLEOTIDE_WARNING = 10     # shorter all-A/C/G/T peptides are plausible proteins: no warning


def warn_if_nucleotides(description: str, sequence: str, source=None, line: int | None = None) -> None:
    """A warning (not an error: these are valid amino-acid letters) when a query looks like DNA/RNA: at least
    MIN_NUCLEOTIDE_WARNING residues, all of A, C, G, T, U, N, with three or more of A, C, G, T/U (a homopolymer
    such as poly-alanine is a protein)."""
    letters = set(sequence)
    if (len(sequence) >= MIN_NUCLEOTIDE_WARNING and letters <= NUCLEOTIDES
            and len(letters - {"N"}) >= 3):
        warn(f"record '{description}' looks like a nucleotide sequence (only A, C, G, T/U, N): it is read as a "
             "protein sequence", source, line)


def parse_query_fasta(text: str, source=None, allow_multiple: bool = False, warn_nucleotides: bool = False):
    """The query record(s) of a FASTA file as [(description, sequence)], residues checked.

    A query residue must be an upper-case letter; letters outside the 20 amino acids are allowed (they become
    X, unknown, as in AlphaFold), anything else (digits, '*', '-', lower case) is an error naming the line. With
    ``warn_nucleotides`` a DNA-looking record gets a warning (:func:`warn_if_nucleotides`).
    """
    records = _fasta_records(text, source)
    if len(records) > 1 and not allow_multiple:
        raise InputError(f"expected one sequence, found {len(records)} records (second at line {records[1][2]})",
                         source, records[1][2])
    out = []
    for rec in records:
        desc, seq, number = rec
        if not seq:
            raise InputError(f"record '{desc}' has no residues", source, number)
        bad = re.search(r"[^A-Z]", seq)
        if bad:
            raise InputError(f"record '{desc}': invalid residue letter {bad.group()!r} at position {bad.start() + 1} "
                             "(expected upper-case amino-acid letters)", source, rec.line_of(bad.start()))
        if warn_nucleotides:
            warn_if_nucleotides(desc, seq, source, number)
        out.append((desc, seq))
    return out


# ------------------------------------------------------------------------------------------------------------- A3M

def _deletions_before_columns(inserted: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """For each kept position, how many ``inserted`` positions lie between it and the previous kept one."""
    counts = np.cumsum(inserted, dtype=np.int64)[kept]
    return np.diff(counts, prepend=0).astype(np.int32)


def parse_a3m(text: str, source=None) -> Msa:
    """A3M: upper case/'-' are aligned to query columns, lower case are insertions ('.' is ignored)."""
    records = _fasta_records(text, source, "A3M")
    sequences, deletions, descriptions = [], [], []
    width = None
    for rec in records:
        desc, seq, number = rec
        bad = _BAD_A3M_CHAR.search(seq.replace(".", "-"))
        if bad:
            raise InputError(f"row '{desc}': invalid character {bad.group()!r} at position {bad.start() + 1}",
                             source, rec.line_of(bad.start()))
        seq = seq.replace(".", "")
        codes = np.frombuffer(seq.encode("ascii"), np.uint8)
        lower = codes >= ord("a")
        kept = np.flatnonzero(~lower)
        if width is None:
            width = len(kept)
            if width == 0:
                raise InputError("the query row (first record) has no aligned residues", source, number)
        elif len(kept) != width:
            raise InputError(f"row '{desc}' has {len(kept)} aligned columns but the query has {width} "
                             "(rows of an A3M must have the same number of upper-case/'-' characters)",
                             source, number)
        sequences.append(codes[kept].tobytes().decode("ascii"))
        deletions.append(_deletions_before_columns(lower, kept))
        descriptions.append(desc)
    return Msa(sequences, np.stack(deletions).astype(np.int32), descriptions, _name(source))


# ------------------------------------------------------------------------------------------------------- Stockholm

def _stockholm_rows(text: str, source=None, max_sequences: int | None = None, allow_empty: bool = False):
    """{name: [aligned text, first line number]} in file order; at most ``max_sequences`` names are kept."""
    rows: dict = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "//")):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise InputError(f"expected '<name> <aligned sequence>', got {len(parts)} fields", source, number)
        name, chunk = parts
        if name not in rows:
            if max_sequences is not None and len(rows) >= max_sequences:
                continue
            rows[name] = [[], number]
        rows[name][0].append(chunk)
    if not rows and not allow_empty:
        raise InputError("empty MSA: no sequence lines in the Stockholm file", source)
    return {name: ("".join(parts), number) for name, (parts, number) in rows.items()}


def parse_stockholm(text: str, source=None, max_sequences: int | None = None) -> Msa:
    """Stockholm (jackhmmer -A output). The first sequence is the query; columns where it has a gap are removed
    and the residues other rows have there become deletions. ``max_sequences`` keeps only the first N sequences,
    as AlphaFold truncates uniref90 (10000) and mgnify (501) hits. '.' counts as a gap."""
    rows = _stockholm_rows(text, source, max_sequences)
    names = list(rows)
    query, query_line = rows[names[0]]
    query = query.replace(".", "-").upper()
    qcodes = np.frombuffer(query.encode("ascii", "replace"), np.uint8)
    kept = np.flatnonzero(qcodes != ord("-"))
    if len(kept) == 0:
        raise InputError(f"the query row '{names[0]}' has no residues", source, query_line)
    sequences, deletions = [], []
    for name in names:
        seq, number = rows[name]
        seq = seq.replace(".", "-").upper()
        if len(seq) != len(query):
            raise InputError(f"sequence '{name}' is {len(seq)} columns long but the query is {len(query)} "
                             "(Stockholm rows must be equally long)", source, number)
        bad = _BAD_MSA_CHAR.search(seq)
        if bad:
            raise InputError(f"sequence '{name}': invalid character {bad.group()!r} at column {bad.start() + 1}",
                             source, number)
        codes = np.frombuffer(seq.encode("ascii"), np.uint8)
        inserted = (qcodes == ord("-")) & (codes != ord("-"))
        sequences.append(codes[kept].tobytes().decode("ascii"))
        deletions.append(_deletions_before_columns(inserted, kept))
    return Msa(sequences, np.stack(deletions), names, _name(source))


def stockholm_descriptions(text: str) -> dict:
    """{sequence name: DE text} from the '#=GS <name> DE <text>' lines."""
    out = {}
    for line in text.splitlines():
        if line.startswith("#=GS"):
            cols = line.split(maxsplit=3)
            if len(cols) >= 3 and cols[2] == "DE":
                out.setdefault(cols[1], cols[3] if len(cols) == 4 else "")
    return out


def truncate_stockholm(text: str, max_sequences: int) -> str:
    """The Stockholm text restricted to its first ``max_sequences`` sequences (markup of other rows dropped)."""
    keep = set(_stockholm_rows(text, max_sequences=max_sequences))
    return _filter_stockholm_lines(text, keep)


def _filter_stockholm_lines(text: str, keep: set) -> str:
    out = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s == "//" or line.startswith(("# STOCKHOLM", "#=GC RF")):
            out.append(line)
        elif line.startswith("#=GS"):
            if line.split(maxsplit=2)[1] in keep:
                out.append(line)
        elif line.startswith("#"):
            continue
        elif line.split(maxsplit=1)[0] in keep:
            out.append(line)
    return "\n".join(out) + "\n"


def deduplicate_stockholm(text: str, source=None) -> str:
    """Drop rows whose residues on the query's columns repeat an earlier row (insertions ignored)."""
    rows = _stockholm_rows(text, source)
    query = next(iter(rows.values()))[0]
    kept_cols = [i for i, c in enumerate(query) if c != "-"]
    seen, keep = set(), set()
    for name, (seq, _) in rows.items():
        key = "".join(seq[i] for i in kept_cols if i < len(seq))
        if key not in seen:
            seen.add(key)
            keep.add(name)
    return _filter_stockholm_lines(text, keep)


def remove_empty_columns_from_stockholm(text: str) -> str:
    """Remove columns that are gaps in every row (and in the '#=GC RF' line), block by block."""
    lines = text.splitlines()
    out = list(lines)
    block: list = []   # indices of the sequence lines of the current block
    for i, line in enumerate(lines):
        if line.startswith("#=GC RF"):
            block.append(i)
            seq_lines = [lines[j].rpartition(" ") for j in block]
            width = len(seq_lines[-1][2])
            mask = [any(a[2][c] != "-" for a in seq_lines[:-1] if c < len(a[2])) for c in range(width)]
            for j, (prefix, _, ali) in zip(block, seq_lines):
                out[j] = f"{prefix} {''.join(ch for ch, m in zip(ali, mask) if m)}" if any(mask) else ""
            block = []
        elif line.strip() and not line.startswith(("#", "//")):
            block.append(i)
    return "\n".join(out)


def stockholm_to_a3m(text: str, max_sequences: int | None = None, remove_first_row_gaps: bool = True) -> str:
    """A3M text of a Stockholm MSA ('>name DE-text' headers); query-gap columns become lower-case insertions."""
    rows = _stockholm_rows(text, max_sequences=max_sequences, allow_empty=True)
    if not rows:
        return ""
    descriptions = stockholm_descriptions(text)
    query = next(iter(rows.values()))[0].replace(".", "")
    chunks = []
    for name, (seq, _) in rows.items():
        seq = seq.replace(".", "")
        if remove_first_row_gaps:
            seq = "".join(r if q != "-" else r.lower() for q, r in zip(query, seq) if q != "-" or r != "-")
        chunks.append(f">{name} {descriptions.get(name, '')}\n{seq}")
    return "\n".join(chunks) + "\n"


def read_msa(path, max_sequences: int | None = None) -> Msa:
    """Parse an MSA file by its extension: .a3m (A3M) or .sto/.stockholm (Stockholm)."""
    path = Path(path)
    text = read_text(path)
    if path.suffix == ".a3m":
        msa = parse_a3m(text, path)
        return msa.truncate(max_sequences) if max_sequences else msa
    if path.suffix in (".sto", ".stockholm"):
        return parse_stockholm(text, path, max_sequences)
    raise InputError("unknown MSA format (expected a .a3m or .sto file)", path)


# ------------------------------------------------------------------------------------------- template hits (HHR)

_HHR_SUMMARY = re.compile(
    r"Probab=(\S+)\s+E-value=(\S+)\s+Score=(\S+)\s+Aligned_cols=(\S+)\s+Identities=(\S+)%\s+"
    r"Similarity=(\S+)\s+Sum_probs=(\S+)\s+Template_Neff=(\S+)")
_HHR_QUERY_LINE = re.compile(r"\s*(\d+) ([A-Z-]*)\s*(\d+) \(\d+\)")
_HHR_HIT_LINE = re.compile(r"\s*(\d+) ([A-Z-]*)\s*\d+ \(\d+\)")
_HHR_SKIP = ("ss_dssp", "ss_pred", "Consensus")


def _indices(aligned: str, start: int) -> list:
    """Residue indices (from ``start``) of an aligned string; -1 at gaps."""
    out, counter = [], start
    for ch in aligned:
        if ch == "-":
            out.append(-1)
        else:
            out.append(counter)
            counter += 1
    return out


def _parse_hhr_hit(lines: list, first_line: int, source) -> TemplateHit:
    try:
        number = int(lines[0].split()[-1])
    except (IndexError, ValueError):
        raise InputError("hit block must start with 'No <number>'", source, first_line) from None
    if len(lines) < 3:
        raise InputError("hit block is truncated (no '>name' and summary lines)", source, first_line)
    name = lines[1][1:]
    match = _HHR_SUMMARY.match(lines[2])
    if match is None:
        raise InputError("hit summary line not understood (expected 'Probab=... Sum_probs=... Template_Neff=...')",
                         source, first_line + 2)
    aligned_cols, sum_probs = int(float(match.group(4))), float(match.group(7))
    query, hit = [], []
    indices_query, indices_hit = [], []
    block_len = None
    for offset, line in enumerate(lines[3:], start=3):
        kind = line[:2]
        if kind not in ("Q ", "T ") or line[2:].split(" ", 1)[0] in _HHR_SKIP:
            continue
        pattern = _HHR_QUERY_LINE if kind == "Q " else _HHR_HIT_LINE
        m = pattern.match(line[17:])
        if m is None:
            raise InputError(f"alignment line not understood: {line.strip()[:60]!r}", source, first_line + offset)
        start, chunk = int(m.group(1)) - 1, m.group(2)
        if kind == "Q ":
            block_len = int(m.group(3)) - start + chunk.count("-")
            if block_len != len(chunk):
                raise InputError("query alignment line: residue range does not match its length",
                                 source, first_line + offset)
            query.append(chunk)
            indices_query += _indices(chunk, start)
        else:
            if block_len is None or len(chunk) != block_len:
                raise InputError("template alignment line does not match the preceding query line",
                                 source, first_line + offset)
            hit.append(chunk)
            indices_hit += _indices(chunk, start)
    return TemplateHit(number, name, aligned_cols, sum_probs, "".join(query), "".join(hit), indices_query,
                       indices_hit)


def parse_hhr(text: str, source=None) -> list:
    """Template hits of an HHsearch/HHblits .hhr file, in file order (a file without hits gives [])."""
    lines = text.splitlines()
    if lines and not lines[0].startswith("Query") and not any(ln.startswith("No ") for ln in lines):
        raise InputError("not an HHR file (no 'Query' header and no hit blocks)", source, 1)
    starts = [i for i, line in enumerate(lines) if line.startswith("No ")]
    starts.append(len(lines))
    return [_parse_hhr_hit(lines[a:b], a + 1, source) for a, b in zip(starts[:-1], starts[1:])]


_HMMSEARCH_DESC = re.compile(r"^>?([a-z0-9]+)_(\w+)/([0-9]+)-([0-9]+).*protein length:([0-9]+) *(.*)$")


def _a3m_indices(aligned: str, start: int) -> list:
    """Like ``_indices`` but lower-case (inserted) residues advance the counter without a column."""
    out, counter = [], start
    for ch in aligned:
        if ch == "-":
            out.append(-1)
        elif ch.islower():
            counter += 1
        else:
            out.append(counter)
            counter += 1
    return out


def parse_hmmsearch_a3m(query_sequence: str, a3m_text: str, skip_first: bool = True, source=None) -> list:
    """Template hits from hmmsearch output converted to A3M (descriptions '>pdbid_chain/start-end ... length:N')."""
    if not a3m_text.strip():
        return []   # no hits
    records = _fasta_records(a3m_text, source, "A3M")
    if skip_first:
        records = records[1:]
    indices_query = _a3m_indices(query_sequence, 0)
    hits = []
    for i, (desc, seq, number) in enumerate(records, start=1):
        if "mol:protein" not in desc:
            continue
        m = _HMMSEARCH_DESC.match(desc.strip())
        if m is None:
            raise InputError(f"hit description not understood: {desc[:60]!r}", source, number)
        hits.append(TemplateHit(
            index=i, name=f"{m.group(1)}_{m.group(2)}",
            aligned_cols=sum(r.isupper() and r != "-" for r in seq), sum_probs=None,
            query=query_sequence, hit_sequence=seq.upper(), indices_query=indices_query,
            indices_hit=_a3m_indices(seq, int(m.group(3)) - 1)))
    return hits
