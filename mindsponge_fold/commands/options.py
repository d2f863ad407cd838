"""The command-line options several subcommands share, each declared once, and the settings built from them.

* config: ``--config NAME|YAML`` (aliases ``--preset`` and ``--model``, the names older commands used), ``--set
  KEY=VALUE`` (repeatable) and, where a command can build the model from AlphaFold's own config, ``--af-config``;
  :func:`load_config_from_args` turns them into a validated config;
* ``--device`` (MindSpore device target; ``auto``, the default, picks Ascend, else GPU, else CPU:
  :func:`resolve_device`), ``--ema`` (the EMA weights of a training checkpoint);
* the search-tool and template-hit options of ``make-features`` and ``predict``, and the
  :class:`~mindsponge_fold.data.search.SearchSettings` / :class:`~mindsponge_fold.data.search.TemplateHitSettings`
  built from them;
* the targets, alignment inputs and model options of ``predict`` and ``make-distillation-set`` (``--fasta``,
  ``--alignments-dir``, ``--single-sequence``, ``--models``, ``--params-dir``, ``--random-weights``, the config
  options, ``--num-recycle``, ``--seed``, ``--ema``, ``--device``), and the
  :class:`~mindsponge_fold.predict.settings.ModelSettings` / :class:`~mindsponge_fold.predict.settings.FeatureSettings`
  built from them;
* ``--no-bucket`` / ``--compile-cache`` (predict, run-features) and ``--no-progress``.

Library packages never see the argparse ``Namespace``: a command builds typed settings here (or in its own module)
and passes those.
"""
from __future__ import annotations

import argparse

from mindsponge_fold.common.errors import InputError

DEVICES = ("auto", "CPU", "GPU", "Ascend")
CONFIG_FLAG = "--config"
PRESET_ALIAS, MODEL_ALIAS = "--preset", "--model"      # the names predict / run-features used before --config
CONFIG_ALIASES = (PRESET_ALIAS, MODEL_ALIAS)
MAX_TEMPLATE_DATE = "--max-template-date"


def add_config_options(parser, default: str | None = None, help_default: str = "", aliases=CONFIG_ALIASES,
                       af_config: bool = False) -> None:
    """``--config`` (with ``aliases``), ``--set`` and optionally ``--af-config``; dests ``config``, ``overrides``,
    ``af_config``."""
    parser.add_argument(CONFIG_FLAG, *aliases, dest="config", default=default, metavar="NAME|YAML",
                        help="config preset (model_1 ... model_5_ptm, tiny, train_initial, ...) or a yaml path"
                             + (f" (default: {help_default or default})" if (help_default or default) else ""))
    if af_config:
        parser.add_argument("--af-config", metavar="JSON",
                            help="AlphaFold config.json (full_config) to build the model from instead")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. --set model.embeddings_and_evoformer.evoformer_num_block=2 "
                             "(repeatable)")


def load_config_from_args(args, preset: str | None = None, extra_overrides=()):
    """The config of ``--config`` (or ``preset`` when given) / ``--af-config`` with the ``--set`` overrides."""
    from mindsponge_fold.common.config import apply_overrides, load_alphafold_config_file, load_config
    overrides = list(args.overrides) + list(extra_overrides)
    if getattr(args, "af_config", None):
        return apply_overrides(load_alphafold_config_file(args.af_config), overrides)
    return load_config(preset if preset is not None else args.config, overrides)


def add_device_option(parser, default: str = "auto") -> None:
    parser.add_argument("--device", default=default, choices=DEVICES,
                        help=f"MindSpore device target (default {default}: Ascend if present, else GPU, else CPU)")


def resolve_device(requested: str | None) -> str:
    """The device target to run on: ``auto`` (or None) picks the first of Ascend, GPU, CPU that this MindSpore build
    and machine have, and says which on stdout; a named device that is not available is an InputError."""
    import os
    os.environ.setdefault("GLOG_v", "3")          # probing a missing backend would log its library load failure
    import mindspore as ms
    if requested in (None, "auto"):
        chosen = next(d for d in ("Ascend", "GPU", "CPU") if d == "CPU" or ms.hal.is_available(d))
        print(f"device: {chosen} (--device auto)", flush=True)      # stdout: errors stay one line on stderr
        return chosen
    if requested != "CPU" and not ms.hal.is_available(requested):
        raise InputError(f"--device {requested}: not available here (this MindSpore build or machine has no "
                         f"{requested} backend); use --device auto or CPU")
    return requested


def add_ema_option(parser) -> None:
    parser.add_argument("--ema", action="store_true",
                        help="use (convert-params: export) the EMA weights of a training checkpoint")


def add_progress_option(parser) -> None:
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_compile_arguments(group) -> None:
    """Length bucketing and the compiled-graph cache of the commands that run the model (predict, run-features)."""
    group.add_argument("--no-bucket", action="store_true", help="do not pad N_res up to a length bucket")
    group.add_argument("--compile-cache", metavar="DIR",
                       help="cache compiled graphs here, keyed by config and shapes (default: $MSF_COMPILE_CACHE)")


def add_num_recycle_option(parser) -> None:
    parser.add_argument("--num-recycle", type=int,
                        help="recycling iterations (default: the config's model.num_recycle)")


def add_fasta_option(parser, required: bool = False) -> None:
    """``--fasta`` (repeatable) of the commands that predict targets (predict, make-distillation-set)."""
    parser.add_argument("--fasta", action="append", default=[], required=required, metavar="FASTA",
                        help="query FASTA: one target per record (the first header word names it); may repeat")


def add_alignment_input_arguments(group) -> None:
    """Where a prediction's MSAs come from without a search (predict, make-distillation-set)."""
    group.add_argument("--alignments-dir",
                       help="precomputed alignments: DIR/<target>/ per target with AlphaFold's file names "
                            "(uniref90_hits.sto, bfd_uniclust_hits.a3m, mgnify_hits.sto, pdb70_hits.hhr / "
                            "pdb_hits.sto), or DIR itself for a single target")
    group.add_argument("--single-sequence", action="store_true",
                       help="no MSA search: the query alone is the MSA (targets without alignments)")


def add_model_arguments(group, one_model: bool = False, af_config: bool = False, help_default: str = "") -> None:
    """The models that predict and how (predict; make-distillation-set with ``one_model``): ``--models``,
    ``--params-dir``, ``--random-weights``, the config options (``--config`` / ``--preset``: no ``--model`` alias, it
    would be a trap beside ``--models``), ``--num-recycle``, ``--seed``, ``--ema``, ``--device``; read back by
    :func:`model_settings`."""
    if one_model:
        group.add_argument("--models", action="append", default=[], metavar="NAME[=WEIGHTS]",
                           help="the one model that predicts, e.g. model_1=params_model_1.npz (or a training .ckpt)")
    else:
        from mindsponge_fold.predict.settings import DEFAULT_MODELS
        group.add_argument("--models", action="append", default=[], metavar="NAME[=WEIGHTS],...",
                           help=f"models to run, e.g. model_1_ptm=params_model_1_ptm.npz,model_2_ptm=... (default: "
                                f"{DEFAULT_MODELS}); WEIGHTS = AlphaFold .npz or our .ckpt")
    group.add_argument("--params-dir", help="weights of entries without a path: DIR/params_NAME.npz")
    group.add_argument("--random-weights", action="store_true",
                       help="entries without weights get seeded random weights (demos, tests)")
    add_config_options(group, aliases=(PRESET_ALIAS,), af_config=af_config,
                       help_default=help_default or "the preset named as the model")
    add_num_recycle_option(group)
    group.add_argument("--seed", type=int, default=0,
                       help="feature-processing seed (model i uses i + seed * num_models, as AlphaFold; also its "
                            "dropout seed with --set model.global_config.eval_dropout=true) and random weights seed")
    add_ema_option(group)
    add_device_option(group)


def model_settings(args: argparse.Namespace, **extra):
    """The :class:`~mindsponge_fold.predict.settings.ModelSettings` of :func:`add_model_arguments`' options
    (``extra``: the command's own fields, e.g. predict's ``bucket``)."""
    from mindsponge_fold.predict.settings import ModelSettings
    return ModelSettings(models=tuple(args.models), params_dir=args.params_dir, random_weights=args.random_weights,
                         preset=args.config, overrides=tuple(args.overrides), num_recycle=args.num_recycle,
                         seed=args.seed, use_ema=args.ema, device=resolve_device(args.device), **extra)


def feature_settings(args: argparse.Namespace, **extra):
    """The :class:`~mindsponge_fold.predict.settings.FeatureSettings` of :func:`add_alignment_input_arguments`'
    options (``extra``: predict's ``msa``, search and template-hit settings)."""
    from mindsponge_fold.predict.settings import FeatureSettings
    return FeatureSettings(alignments_dir=args.alignments_dir, single_sequence=args.single_sequence, **extra)


def add_search_arguments(group) -> None:
    """Databases and options of the MSA / template searches (make-features and predict)."""
    group.add_argument("--uniref90-database", help="FASTA for jackhmmer -> uniref90_hits.sto")
    group.add_argument("--mgnify-database", help="FASTA for jackhmmer -> mgnify_hits.sto")
    group.add_argument("--bfd-database", action="append", default=[],
                       help="HH-suite db prefix(es) for hhblits -> bfd_uniclust_hits.a3m (--db-preset full_dbs)")
    group.add_argument("--db-preset", choices=("full_dbs", "reduced_dbs"), default="full_dbs",
                       help="AlphaFold's: full_dbs (default) = BFD + Uniclust30 with hhblits; reduced_dbs = the "
                            "small BFD with jackhmmer (needs --small-bfd-database)")
    group.add_argument("--small-bfd-database", metavar="FASTA",
                       help="small BFD for jackhmmer -> small_bfd_hits.sto (--db-preset reduced_dbs)")
    group.add_argument("--pdb70-database", help="HH-suite db prefix for hhsearch -> pdb70_hits.hhr (template hits)")
    group.add_argument("--pdb-seqres-database", help="FASTA for hmmsearch -> pdb_hits.sto (template hits)")
    group.add_argument("--use-mmseqs2", action="store_true",
                       help="search with MMseqs2 (as ColabFold) on local --mmseqs2-database(s) -> mmseqs2_hits.a3m, "
                            "instead of jackhmmer/hhblits")
    group.add_argument("--mmseqs2-database", action="append", default=[], metavar="DB",
                       help="MMseqs2 sequence database prefix (mmseqs createdb) or FASTA (repeatable, hits in order)")
    group.add_argument("--mmseqs2-index-dir", metavar="DIR",
                       help="index FASTA databases into DIR once and reuse them (default: per search)")
    group.add_argument("--n-cpu", type=int, default=2, help="threads per search tool")
    group.add_argument("--tool-cache-dir", help="cache search-tool results here (key: binary + args + input hashes)")


def add_template_hit_arguments(group) -> None:
    """How template search hits become template features, and custom templates (make-features and predict)."""
    group.add_argument("--templates", action="append", default=[], metavar="MMCIF|DIR",
                       help="custom templates (repeatable): mmCIF files or directories of them; each file's "
                            "best-aligning chain is aligned to the query, or with --template-hits the hits are "
                            "read from these files only")
    group.add_argument("--template-hits", action="append", default=[], metavar="FILE",
                       help="template search output (.hhr from hhsearch, .sto from hmmsearch) for the query")
    group.add_argument("--mmcif-dir", help="directory of <pdb_id>.cif files for template hits")
    group.add_argument(MAX_TEMPLATE_DATE, default="2100-01-01",
                       help="drop templates released after this (YYYY-MM-DD)")
    group.add_argument("--max-templates", type=int, default=20, help="max templates from search hits (AlphaFold: 20)")
    group.add_argument("--release-dates", help="optional 'pdbid: YYYY-MM-DD' file used to prefilter hits")
    group.add_argument("--obsolete-pdbs", help="optional PDB obsolete.dat")
    group.add_argument("--kalign-binary", default="kalign", help="kalign for template realignment")


def search_settings(args: argparse.Namespace):
    from mindsponge_fold.data.search import SearchSettings
    return SearchSettings(uniref90_database=args.uniref90_database, mgnify_database=args.mgnify_database,
                          bfd_database=tuple(args.bfd_database), pdb70_database=args.pdb70_database,
                          pdb_seqres_database=args.pdb_seqres_database, n_cpu=args.n_cpu,
                          tool_cache_dir=args.tool_cache_dir, db_preset=args.db_preset,
                          small_bfd_database=args.small_bfd_database, use_mmseqs2=args.use_mmseqs2,
                          mmseqs2_database=tuple(args.mmseqs2_database), mmseqs2_index_dir=args.mmseqs2_index_dir)


def template_hit_settings(args: argparse.Namespace):
    from mindsponge_fold.data.search import TemplateHitSettings
    from mindsponge_fold.data.templates import parse_date
    parse_date(args.max_template_date, MAX_TEMPLATE_DATE)        # a malformed date: said now, naming the option
    return TemplateHitSettings(mmcif_dir=args.mmcif_dir, max_template_date=args.max_template_date,
                               max_templates=args.max_templates, release_dates=args.release_dates,
                               obsolete_pdbs=args.obsolete_pdbs, kalign_binary=args.kalign_binary,
                               hit_files=tuple(args.template_hits), custom_templates=tuple(args.templates))
