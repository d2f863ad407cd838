"""Which search tools and template-hit settings a :class:`~mindsponge_fold.data.pipeline.DataPipeline` runs with.

The settings are frozen dataclasses built at the command boundary (``make-features`` and ``predict`` share the
options, :mod:`mindsponge_fold.commands.options`); :func:`build_pipeline` makes the pipeline they describe.
"""
from __future__ import annotations

import dataclasses

from mindsponge_fold.common.errors import InputError
from mindsponge_fold.data import custom_templates, pipeline, templates
from mindsponge_fold.data.tools import HHBlits, HHSearch, Hmmsearch, Jackhmmer, Kalign, MMseqs2


DB_PRESETS = ("full_dbs", "reduced_dbs")


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """Databases of the MSA and template searches (None / empty: that search is not run).

    ``db_preset`` is AlphaFold's ``--db_preset`` (supplement 1.2.2, genetic search): ``full_dbs`` searches BFD +
    Uniclust30 (``bfd_database``, HH-suite databases) with HHblits -> bfd_uniclust_hits.a3m; ``reduced_dbs``
    searches the small BFD (``small_bfd_database``, a FASTA) with jackhmmer instead -> small_bfd_hits.sto. A
    combination AlphaFold's run_alphafold.py refuses (reduced_dbs with HH-suite BFD databases or without the small
    BFD, full_dbs with a small BFD) is an InputError naming the options."""
    uniref90_database: str | None = None
    mgnify_database: str | None = None
    bfd_database: tuple = ()
    pdb70_database: str | None = None
    pdb_seqres_database: str | None = None
    n_cpu: int = 2
    tool_cache_dir: str | None = None
    db_preset: str = "full_dbs"
    small_bfd_database: str | None = None
    use_mmseqs2: bool = False                  # ColabFold-style: MMseqs2 on local databases replaces the MSA searches
    mmseqs2_database: tuple = ()               # MMseqs2 sequence databases or FASTAs (tools.mmseqs)
    mmseqs2_index_dir: str | None = None       # where FASTAs are indexed (reused); None: per search

    def __post_init__(self):
        self._check_mmseqs2()
        if self.db_preset not in DB_PRESETS:
            raise InputError(f"--db-preset must be one of {', '.join(DB_PRESETS)}, got {self.db_preset!r}")
        if self.db_preset == "reduced_dbs":
            if self.bfd_database:
                raise InputError("--db-preset reduced_dbs searches the small BFD with jackhmmer: drop "
                                 "--bfd-database (HH-suite databases are searched with --db-preset full_dbs)")
            if not self.small_bfd_database:
                raise InputError("--db-preset reduced_dbs needs --small-bfd-database FASTA (the small BFD, "
                                 "searched with jackhmmer -> small_bfd_hits.sto)")
        elif self.small_bfd_database:
            raise InputError("--small-bfd-database is for --db-preset reduced_dbs (full_dbs, the default, searches "
                             "--bfd-database with hhblits)")

    def _check_mmseqs2(self) -> None:
        if self.mmseqs2_database and not self.use_mmseqs2:
            raise InputError("--mmseqs2-database is searched with --use-mmseqs2: add it (or drop the database)")
        if not self.use_mmseqs2:
            return
        if not self.mmseqs2_database:
            raise InputError("--use-mmseqs2 needs --mmseqs2-database DB (a local MMseqs2 sequence database or FASTA; "
                             "repeatable)")
        searches = ("uniref90_database", "mgnify_database", "bfd_database", "small_bfd_database", "pdb70_database",
                    "pdb_seqres_database")                  # named as their command-line options
        others = ["--" + field.replace("_", "-") for field in searches if getattr(self, field)]
        if others:
            raise InputError(f"--use-mmseqs2 replaces the jackhmmer/hhblits searches (and the template search, which "
                             f"reads their uniref90 MSA): drop {', '.join(others)}")

    @property
    def use_small_bfd(self) -> bool:
        return self.db_preset == "reduced_dbs"

    @property
    def can_search(self) -> bool:
        """True when at least one search database is given."""
        return any((self.uniref90_database, self.mgnify_database, self.bfd_database, self.small_bfd_database,
                    self.pdb70_database, self.pdb_seqres_database, self.mmseqs2_database))


@dataclasses.dataclass(frozen=True)
class TemplateHitSettings:
    """How template search hits become template features (AlphaFold's TemplateHitFeaturizer settings)."""
    mmcif_dir: str | None = None               # None: template hits are not featurised
    max_template_date: str = "2100-01-01"
    max_templates: int = 20
    release_dates: str | None = None           # 'pdbid: YYYY-MM-DD' file
    obsolete_pdbs: str | None = None           # PDB obsolete.dat
    kalign_binary: str = "kalign"
    hit_files: tuple = ()                      # template search outputs given by the user (.hhr / .sto)
    custom_templates: tuple = ()               # --templates: mmCIF files / directories (data.custom_templates)

    def __post_init__(self):
        if self.custom_templates and self.mmcif_dir:
            raise InputError("--templates and --mmcif-dir both name where template structures are: give one "
                             "(--templates FILES|DIR featurises --template-hits against those files only)")
        if self.hit_files and not (self.mmcif_dir or self.custom_templates):
            raise InputError("--template-hits needs --mmcif-dir or --templates (where the template structures are)")


def build_pipeline(search: SearchSettings, hits: TemplateHitSettings,
                   direct_templates: tuple = ()) -> pipeline.DataPipeline:
    """The data pipeline with the search runners of ``search``, the template featurizer of ``hits`` and the
    ``direct_templates`` (:class:`~mindsponge_fold.data.pipeline.DirectTemplate`)."""
    cache = search.tool_cache_dir
    custom = custom_templates.template_files(hits.custom_templates) if hits.custom_templates else ()
    if custom and (search.pdb70_database or search.pdb_seqres_database):
        raise InputError("--templates replaces the template search: drop --pdb70-database / --pdb-seqres-database")
    featurizer = None
    if hits.mmcif_dir or (custom and hits.hit_files):      # custom templates alone are aligned, not featurised hits
        featurizer = templates.TemplateHitFeaturizer(
            mmcif_dir=hits.mmcif_dir or "", max_template_date=hits.max_template_date, max_hits=hits.max_templates,
            kalign=Kalign(hits.kalign_binary, cache_dir=cache),
            release_dates=templates.parse_release_dates(hits.release_dates) if hits.release_dates else {},
            obsolete_pdbs=templates.parse_obsolete(hits.obsolete_pdbs) if hits.obsolete_pdbs else {},
            mmcif_files=custom_templates.files_by_pdb_id(custom) if custom else None)
    searcher = None
    if search.pdb70_database:
        searcher = HHSearch([search.pdb70_database], n_cpu=search.n_cpu, cache_dir=cache)
    elif search.pdb_seqres_database:
        searcher = Hmmsearch(search.pdb_seqres_database, n_cpu=search.n_cpu, cache_dir=cache)

    def jack(db):
        return Jackhmmer(db, n_cpu=search.n_cpu, cache_dir=cache) if db else None

    bfd = HHBlits(list(search.bfd_database), n_cpu=search.n_cpu, cache_dir=cache) if search.bfd_database else None
    return pipeline.DataPipeline(
        template_featurizer=featurizer, direct_templates=tuple(direct_templates),
        max_template_date=hits.max_template_date, jackhmmer_uniref90=jack(search.uniref90_database),
        jackhmmer_mgnify=jack(search.mgnify_database), hhblits_bfd=bfd, template_searcher=searcher,
        use_small_bfd=search.use_small_bfd, jackhmmer_small_bfd=jack(search.small_bfd_database),
        custom_templates=custom, max_custom_templates=hits.max_templates,
        mmseqs2=MMseqs2(tuple(search.mmseqs2_database), n_cpu=search.n_cpu, index_dir=search.mmseqs2_index_dir,
                        cache_dir=cache) if search.use_mmseqs2 else None)
