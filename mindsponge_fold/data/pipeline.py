"""Raw features of one chain (AlphaFold's data pipeline, supplement 1.2): sequence, MSA and template features.

``DataPipeline.process`` reads the query FASTA and the alignment directory (files named as AlphaFold writes them:
uniref90_hits.sto, bfd_uniclust_hits.a3m (or bfd_uniref_hits.a3m / small_bfd_hits.sto), mgnify_hits.sto,
pdb70_hits.hhr / pdb_hits.sto); a missing alignment is computed with the configured search tool when there is one.
The output is the raw feature dict of ``feature_shapes.RAW_FEATURES`` (strings as fixed-width bytes arrays).
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from mindsponge_fold.common import residue_constants as rc
from mindsponge_fold.common.errors import InputError, warn
from mindsponge_fold.common.fileio import write_text
from mindsponge_fold.data import custom_templates as custom_lib
from mindsponge_fold.data import feature_shapes, parsers, templates
from mindsponge_fold.data import mmcif as mmcif_lib
from mindsponge_fold.data.msa_identifiers import species_id

log = logging.getLogger(__name__)

# MSA files in AlphaFold's order (deduplication keeps the first occurrence): (role, candidate names).
MSA_FILES = (
    ("uniref90", ("uniref90_hits.sto",)),
    ("bfd", ("bfd_uniclust_hits.a3m", "bfd_uniref_hits.a3m", "small_bfd_hits.sto")),
    ("mgnify", ("mgnify_hits.sto",)),
)
SMALL_BFD_FILE = "small_bfd_hits.sto"      # the bfd role under --db-preset reduced_dbs (jackhmmer on small BFD)
MMSEQS2_FILE = "mmseqs2_hits.a3m"          # the one MSA with --use-mmseqs2 (ColabFold-style MMseqs2 search)
TEMPLATE_HIT_FILES = ("pdb70_hits.hhr", "pdb_hits.sto")

_HHBLITS_LOOKUP = np.full(256, -1, dtype=np.int32)
for _letter, _idx in rc.HHBLITS_AA_TO_ID.items():
    _HHBLITS_LOOKUP[ord(_letter)] = _idx


def make_sequence_features(sequence: str, description: str, num_res: int) -> dict:
    """aatype (one-hot, 20 + X), between_segment_residues, domain_name, residue_index, seq_length, sequence."""
    return {
        "aatype": rc.sequence_to_onehot(sequence, rc.restype_order_with_x, map_unknown_to_x=True).astype(np.int32),
        "between_segment_residues": np.zeros((num_res,), np.int32),
        "domain_name": np.array([description.encode("utf-8")]),
        "residue_index": np.arange(num_res, dtype=np.int32),
        "seq_length": np.full((num_res,), num_res, np.int32),
        "sequence": np.array([sequence.encode("utf-8")]),
    }


def make_msa_features(msas: list) -> dict:
    """Concatenate MSAs in order, dropping any row whose aligned sequence was already seen (in this or an earlier
    MSA), as DeepMind's make_msa_features does. msa in HHblits ids; deletion_matrix_int; species ids."""
    if not msas:
        raise InputError("at least one MSA is needed")
    width = msas[0].num_columns
    rows, deletions, species = [], [], []
    seen = set()
    for msa in msas:
        if len(msa) == 0:
            raise InputError("empty MSA: it has no sequences", msa.source)
        if msa.num_columns != width:
            raise InputError(f"MSA has {msa.num_columns} columns but the first MSA (the query) has {width}",
                             msa.source)
        for seq, dels, desc in zip(msa.sequences, msa.deletion_matrix, msa.descriptions):
            if seq in seen:
                continue
            seen.add(seq)
            rows.append(seq)
            deletions.append(dels)
            species.append(species_id(desc).encode("utf-8"))
    codes = np.frombuffer("".join(rows).encode("ascii"), np.uint8).reshape(len(rows), width)
    msa_ids = _HHBLITS_LOOKUP[codes]
    if (msa_ids < 0).any():   # parsers only let A-Z and '-' through; this guards hand-made Msa objects
        bad = chr(codes[msa_ids < 0][0])
        raise InputError(f"MSA character {bad!r} is not an HHblits residue letter")
    return {
        "deletion_matrix_int": np.asarray(deletions, dtype=np.int32).reshape(len(rows), width),
        "msa": msa_ids.astype(np.int32),
        "num_alignments": np.full((width,), len(rows), np.int32),
        "msa_species_identifiers": np.array(species, dtype="S") if species else np.zeros((0,), "S1"),
    }


def check_msa_query(msa, sequence: str, query_source) -> None:
    """An MSA belongs to the query: one column per query residue, and the query itself as its first row (compared
    as the parsers return it, which is AlphaFold's normalisation: a3m insertions (lower case) and Stockholm
    query-gap columns removed; X on either side, or a query letter outside the 20 amino acids, matches anything).
    Otherwise an InputError naming the MSA file (an alignment of another protein must not pass as this one's)."""
    if msa.num_columns != len(sequence):
        raise InputError(f"MSA has {msa.num_columns} columns but the query in {query_source} has {len(sequence)} "
                         "residues", msa.source)
    first = msa.sequences[0]
    bad = next((i for i, (a, q) in enumerate(zip(first, sequence))
                if a != q and "X" not in (a, q) and q in rc.restypes), None)
    if bad is not None:
        raise InputError(f"the first row ('{msa.descriptions[0][:40]}') is not the query sequence of {query_source}: "
                         f"column {bad + 1} is {first[bad]!r}, the query has {sequence[bad]!r} (an MSA's first row "
                         "must be its query: this alignment was computed for another sequence)", msa.source)


def _sequence_matches(query: str, seqres: str) -> bool:
    return len(query) == len(seqres) and all(a == b or "X" in (a, b) for a, b in zip(query, seqres))


def make_ground_truth_features(query_sequence: str, mmcif_path, chain: str, resolution: float | None = None) -> dict:
    """all_atom_positions/all_atom_mask (atom37, first model) and resolution of the query's own chain.

    The chain's SEQRES must be the query (X matches anything). ``resolution`` overrides the mmCIF header's."""
    protein = mmcif_lib.load_chain(mmcif_path, chain)
    if not _sequence_matches(query_sequence, protein.sequence):
        raise InputError(f"chain {protein.author_chain_id} SEQRES ({len(protein.sequence)} residues) is not the query "
                         f"sequence ({len(query_sequence)} residues)", mmcif_path)
    return {
        "all_atom_positions": protein.atom_positions.astype(np.float32),
        "all_atom_mask": protein.atom_mask.astype(np.float32),
        "resolution": np.array(protein.resolution if resolution is None else resolution, dtype=np.float32),
    }


@dataclasses.dataclass(frozen=True)
class DirectTemplate:
    """A template named directly: mmCIF file + chain, with an explicit map ('identity', a list of L template
    indices, or None = BLOSUM62 global alignment)."""
    mmcif_path: str
    chain: str
    query_to_template: object = None


def read_query(fasta_path, warnings: bool = True) -> tuple:
    """(sequence, description) of a one-record FASTA (a DNA-looking query warns, unless ``warnings`` is off)."""
    (desc, seq), = parsers.parse_query_fasta(parsers.read_text(fasta_path), fasta_path, warn_nucleotides=warnings)
    return seq, desc


@dataclasses.dataclass
class DataPipeline:
    """Assemble raw features. Search runners (tools.*) are optional: without them every alignment must exist.

    ``custom_templates`` (mmCIF files, ``data.custom_templates``): with template hits (given files only, no
    directory lookup or search) the hits are read from these files; without, each file's best chain is aligned.

    ``mmseqs2`` (ColabFold-style): its a3m, mmseqs2_hits.a3m (read when present, else searched), is the only MSA.

    ``use_small_bfd`` (AlphaFold's reduced_dbs): the bfd MSA is small_bfd_hits.sto only, computed with
    ``jackhmmer_small_bfd`` when missing (full_dbs: bfd_uniclust_hits.a3m from ``hhblits_bfd``).

    Direct templates come first (sum_probs 100, 90, ... in the given order: they have no search score, the model
    does not read it; those released after ``max_template_date`` are dropped), then template search hits via
    ``template_featurizer``."""
    template_featurizer: templates.TemplateHitFeaturizer | None = None
    direct_templates: tuple = ()
    max_template_date: str | None = None     # direct templates released later are dropped (hits: the featurizer's)
    uniref_max_hits: int = 10000
    mgnify_max_hits: int = 501
    jackhmmer_uniref90: object = None
    hhblits_bfd: object = None
    jackhmmer_mgnify: object = None
    template_searcher: object = None
    use_small_bfd: bool = False
    jackhmmer_small_bfd: object = None
    custom_templates: tuple = ()             # --templates mmCIF files (data.custom_templates)
    max_custom_templates: int = 20
    mmseqs2: object = None                   # tools.MMseqs2: its a3m (mmseqs2_hits.a3m) is the only MSA

    @property
    def msa_files(self) -> tuple:
        """(role, candidate file names) of the MSAs read, in AlphaFold's order."""
        if self.mmseqs2 is not None:
            return (("mmseqs2", (MMSEQS2_FILE,)),)
        if not self.use_small_bfd:
            return MSA_FILES
        return tuple((role, (SMALL_BFD_FILE,) if role == "bfd" else names) for role, names in MSA_FILES)

    def _max_hits(self, role: str) -> int | None:
        return {"uniref90": self.uniref_max_hits, "mgnify": self.mgnify_max_hits}.get(role)

    def _msa(self, role: str, names: tuple, fasta_path, msa_dir: Path):
        max_hits = self._max_hits(role)
        for name in names:
            if (msa_dir / name).exists():
                return parsers.read_msa(msa_dir / name, max_sequences=max_hits)
        bfd = self.jackhmmer_small_bfd if self.use_small_bfd else self.hhblits_bfd
        runner = {"uniref90": self.jackhmmer_uniref90, "bfd": bfd, "mgnify": self.jackhmmer_mgnify,
                  "mmseqs2": self.mmseqs2}[role]
        if runner is None:
            return None
        if role == "mmseqs2" or (role == "bfd" and not self.use_small_bfd):
            text, path = runner.query(str(fasta_path))["a3m"], msa_dir / names[0]
        else:
            text, path = runner.query(str(fasta_path), max_hits)["sto"], msa_dir / names[0]
        write_text(path, text)
        return parsers.read_msa(path, max_sequences=max_hits)

    def _hit_files(self, msa_dir: Path, hit_files) -> list:
        """The template-hit files to read: the given ones, else (with a featurizer) those in the directory."""
        files = list(hit_files or [])
        if not files and self.template_featurizer is not None and not self.custom_templates:
            files = [msa_dir / n for n in TEMPLATE_HIT_FILES if (msa_dir / n).exists()]
        return files

    def _template_hits(self, query: str, msa_dir: Path, hit_files) -> list:
        hits = []
        files = self._hit_files(msa_dir, hit_files)
        if not files and self.template_featurizer is not None and self.template_searcher is not None \
                and not self.custom_templates:
            files = [self._run_template_search(msa_dir)]
        for path in files:
            hits += read_template_hits(path, query)
        return hits

    def check_inputs(self, sequence: str, msa_output_dir, query_source, template_hit_files=None) -> None:
        """Parse and check every alignment and template-hit file :meth:`process` would read from ``msa_output_dir``
        (those present: missing ones are searched), without building features: ``predict`` calls this for every
        target before the first model loads, so a malformed or foreign file of a later target stops the run at
        once. ``query_source`` names the query in messages."""
        msa_dir = Path(msa_output_dir)
        if not msa_dir.is_dir():
            raise InputError("alignment directory not found", msa_dir)
        for role, names in self.msa_files:
            path = next((msa_dir / n for n in names if (msa_dir / n).exists()), None)
            if path is not None:
                check_msa_query(parsers.read_msa(path, max_sequences=self._max_hits(role)), sequence, query_source)
        self.check_templates(sequence, msa_dir, template_hit_files)

    def check_templates(self, sequence: str, msa_dir, template_hit_files=None) -> None:
        """Parse the template-hit files (checked against the query) and the custom template mmCIFs."""
        for path in self._hit_files(Path(msa_dir), template_hit_files):
            read_template_hits(path, sequence, warn_empty=False)     # (process warns about an empty one)
        custom_lib.check_template_files(self.custom_templates)

    def _run_template_search(self, msa_dir: Path) -> Path:
        sto = parsers.read_text(msa_dir / "uniref90_hits.sto")
        sto = parsers.remove_empty_columns_from_stockholm(parsers.deduplicate_stockholm(sto))
        searcher = self.template_searcher
        query_msa = parsers.stockholm_to_a3m(sto) if searcher.input_format == "a3m" else sto
        out = msa_dir / ("pdb70_hits.hhr" if searcher.output_format == "hhr" else "pdb_hits.sto")
        write_text(out, searcher.query(query_msa))
        return out

    def process(self, input_fasta_path, msa_output_dir, template_hit_files=None, ground_truth=None,
                resolution: float | None = None, query_warnings: bool = True) -> dict:
        """Raw features for the query in ``input_fasta_path`` from the alignments in ``msa_output_dir``.

        ``ground_truth`` = (mmcif_path, chain) adds all_atom_positions/all_atom_mask/resolution labels;
        ``resolution`` overrides the mmCIF value (or adds it alone). ``query_warnings`` off: the query was checked
        (and warned about) before, e.g. by predict when it read its targets."""
        sequence, description = read_query(input_fasta_path, query_warnings)
        msa_dir = Path(msa_output_dir)
        if not msa_dir.is_dir():
            raise InputError("alignment directory not found", msa_dir)
        msas = [m for role, names in self.msa_files if (m := self._msa(role, names, input_fasta_path, msa_dir))]
        if not msas:
            expected = ", ".join(n for _, names in self.msa_files for n in names)
            raise InputError(f"no alignment files (expected some of: {expected})", msa_dir)
        for msa in msas:
            check_msa_query(msa, sequence, input_fasta_path)
        features = {**make_sequence_features(sequence, description, len(sequence)), **make_msa_features(msas)}
        features.update(self.template_features(sequence, msa_dir, template_hit_files))
        if ground_truth is not None:
            features.update(make_ground_truth_features(sequence, *ground_truth, resolution=resolution))
        elif resolution is not None:
            features["resolution"] = np.array(resolution, dtype=np.float32)
        feature_shapes.validate(features, spec=feature_shapes.RAW_FEATURES, source=str(input_fasta_path))
        return features

    def template_features(self, sequence: str, msa_dir: Path, template_hit_files=None) -> dict:
        found = []
        cutoff = templates.parse_date(self.max_template_date) if self.max_template_date else None
        for t in self.direct_templates:
            released = mmcif_lib.parse_mmcif(t.mmcif_path).header.get("release_date")
            if cutoff and released and templates.parse_date(released, "release date") > cutoff:
                log.warning("template %s:%s skipped: released %s, after %s", t.mmcif_path, t.chain, released,
                            self.max_template_date)
                continue
            found.append(templates.direct_template_features(sequence, t.mmcif_path, t.chain, t.query_to_template,
                                                            sum_probs=max(100.0 - 10.0 * len(found), 0.0)))
        hits = self._template_hits(sequence, msa_dir, template_hit_files)
        if self.custom_templates and not hits:
            found += custom_lib.custom_template_features(sequence, self.custom_templates,
                                                        max(100.0 - 10.0 * len(found), 0.0), self.max_custom_templates)
        if hits:
            if self.template_featurizer is None:
                raise InputError("template hits given but no mmCIF directory to read the template structures from")
            result = self.template_featurizer.get_templates(sequence, hits)
            messages = result.errors + result.warnings
            for msg in messages[:5]:
                log.warning("template hit skipped: %s", msg)
            if len(messages) > 5:
                log.warning("... and %d more template hits skipped", len(messages) - 5)
            n = result.features["template_aatype"].shape[0]
            from_hits = [{k: v[i] for k, v in result.features.items()} for i in range(n)]
            if found:   # the hmmsearch placeholder is only for when there is no template at all
                from_hits = [t for t in from_hits if t["template_domain_names"]]
            found += from_hits
        return templates.stack_template_features(found, len(sequence))


def read_template_hits(path, query_sequence: str, warn_empty: bool = True) -> list:
    """Template hits of an .hhr file (hhsearch) or a Stockholm file (hmmsearch output), checked to belong to the
    query (``templates.check_hits_match_query``: a file of another query is an InputError naming it). A file without
    any hit is valid (the search found nothing) but probably not what was meant: a warning."""
    path = Path(path)
    text = parsers.read_text(path)
    if path.suffix == ".hhr":
        hits = parsers.parse_hhr(text, path)
    elif path.suffix in (".sto", ".stockholm"):
        a3m = parsers.stockholm_to_a3m(text, remove_first_row_gaps=False)
        try:
            hits = parsers.parse_hmmsearch_a3m(query_sequence, a3m, skip_first=False, source=path)
        except InputError as e:      # its line numbers are of the A3M conversion, not of this file
            raise InputError(e.problem, path) from None
    else:
        raise InputError("unknown template hit format (expected .hhr or .sto)", path)
    if not hits and warn_empty:
        warn("no template hits in this file (empty search output): the query gets no templates from it", path)
    templates.check_hits_match_query(hits, query_sequence, path)
    return hits
