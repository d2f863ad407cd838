"""``mindsponge-fold make-features``: FASTA + alignment directory (+ templates, + ground truth) -> raw_features.npz.

Alignments are read from --alignments-dir under AlphaFold's names (uniref90_hits.sto, bfd_uniclust_hits.a3m,
mgnify_hits.sto, pdb70_hits.hhr); a missing one is computed when its database is given (--uniref90-database ...).
Templates: search hits (--template-hits, or pdb70_hits.hhr / pdb_hits.sto in the directory) read with --mmcif-dir,
and/or direct templates --template MMCIF:CHAIN[:MAP] with MAP = 'identity', a JSON file holding the L-long
query->template index list (-1 = unaligned), or omitted for a BLOSUM62 global alignment.
The output is written atomically.
"""
from __future__ import annotations

import json
from pathlib import Path

from mindsponge_fold.common.errors import InputError
from mindsponge_fold.common.fileio import save_npz
from mindsponge_fold.data import pipeline, templates
from mindsponge_fold.data.tools import HHBlits, HHSearch, Hmmsearch, Jackhmmer, Kalign


def add_arguments(parser) -> None:
    parser.add_argument("--fasta", required=True, help="query FASTA (one record; its header is the domain name)")
    parser.add_argument("--alignments-dir", required=True, help="directory with the MSA / template-hit files")
    parser.add_argument("--out", required=True, help="output .npz of raw features")
    t = parser.add_argument_group("templates")
    t.add_argument("--template", action="append", default=[], metavar="MMCIF:CHAIN[:MAP]",
                   help="direct template; MAP = identity | mapping.json | omitted (BLOSUM62 global alignment)")
    t.add_argument("--template-hits", action="append", default=[], metavar="FILE",
                   help="template search output (.hhr from hhsearch, .sto from hmmsearch)")
    add_template_hit_arguments(t)
    g = parser.add_argument_group("ground truth (training labels)")
    g.add_argument("--ground-truth", metavar="MMCIF:CHAIN", help="add all_atom_positions/all_atom_mask/resolution")
    g.add_argument("--resolution", type=float, help="resolution label override (e.g. for NMR entries)")
    add_search_arguments(parser.add_argument_group(
        "search tools (only used for alignments missing from --alignments-dir)"))


def add_search_arguments(group) -> None:
    """Databases and options of the MSA / template searches (make-features and predict)."""
    group.add_argument("--uniref90-database", help="FASTA for jackhmmer -> uniref90_hits.sto")
    group.add_argument("--mgnify-database", help="FASTA for jackhmmer -> mgnify_hits.sto")
    group.add_argument("--bfd-database", action="append", default=[], help="HH-suite db prefix(es) for hhblits")
    group.add_argument("--pdb70-database", help="HH-suite db prefix for hhsearch -> pdb70_hits.hhr (template hits)")
    group.add_argument("--pdb-seqres-database", help="FASTA for hmmsearch -> pdb_hits.sto (template hits)")
    group.add_argument("--n-cpu", type=int, default=2, help="threads per search tool")
    group.add_argument("--tool-cache-dir", help="cache search-tool results here (key: binary + args + input hashes)")


def add_template_hit_arguments(group) -> None:
    """How template search hits become template features (make-features and predict)."""
    group.add_argument("--mmcif-dir", help="directory of <pdb_id>.cif files for template hits")
    group.add_argument("--max-template-date", default="2100-01-01",
                       help="drop templates released after this (YYYY-MM-DD)")
    group.add_argument("--max-templates", type=int, default=20, help="max templates from search hits (AlphaFold: 20)")
    group.add_argument("--release-dates", help="optional 'pdbid: YYYY-MM-DD' file used to prefilter hits")
    group.add_argument("--obsolete-pdbs", help="optional PDB obsolete.dat")
    group.add_argument("--kalign-binary", default="kalign", help="kalign for template realignment")


def _split_spec(spec: str, what: str) -> tuple:
    """'path:CHAIN[:MAP]' -> (path, chain, map or None). The path may itself contain ':'."""
    parts = spec.split(":")
    last = parts[-1]
    if len(parts) >= 3 and (last in ("identity", "blosum62") or last.endswith(".json")
                            or Path(":".join(parts[:-2])).exists()):
        path, chain, mapping = ":".join(parts[:-2]), parts[-2], parts[-1]
    elif len(parts) >= 2:
        path, chain, mapping = ":".join(parts[:-1]), parts[-1], None
    else:
        raise InputError(f"{what} must look like MMCIF:CHAIN[:MAP], got {spec!r}")
    if not path or not chain:
        raise InputError(f"{what} must look like MMCIF:CHAIN[:MAP], got {spec!r}")
    return path, chain, mapping


def _load_mapping(mapping):
    if mapping is None or mapping in ("identity", "blosum62"):
        return None if mapping in (None, "blosum62") else "identity"
    try:
        data = json.loads(Path(mapping).read_text())
    except FileNotFoundError:
        raise InputError("template mapping file not found", mapping) from None
    except ValueError as e:
        raise InputError(f"template mapping is not valid JSON ({e})", mapping) from None
    if isinstance(data, dict):
        data = data.get("query_to_template")
    if not isinstance(data, list) or not all(isinstance(x, int) for x in data):
        raise InputError("template mapping must be a JSON list of integers (or {'query_to_template': [...]})",
                         mapping)
    return data


def build_pipeline(args) -> pipeline.DataPipeline:
    cache = args.tool_cache_dir
    direct = []
    for spec in args.template:
        path, chain, mapping = _split_spec(spec, "--template")
        direct.append(pipeline.DirectTemplate(path, chain, _load_mapping(mapping)))
    featurizer = None
    if args.mmcif_dir:
        featurizer = templates.TemplateHitFeaturizer(
            mmcif_dir=args.mmcif_dir, max_template_date=args.max_template_date, max_hits=args.max_templates,
            kalign=Kalign(args.kalign_binary, cache_dir=cache),
            release_dates=templates.parse_release_dates(args.release_dates) if args.release_dates else {},
            obsolete_pdbs=templates.parse_obsolete(args.obsolete_pdbs) if args.obsolete_pdbs else {})
    searcher = None
    if args.pdb70_database:
        searcher = HHSearch([args.pdb70_database], n_cpu=args.n_cpu, cache_dir=cache)
    elif args.pdb_seqres_database:
        searcher = Hmmsearch(args.pdb_seqres_database, n_cpu=args.n_cpu, cache_dir=cache)

    def jack(db):
        return Jackhmmer(db, n_cpu=args.n_cpu, cache_dir=cache) if db else None

    return pipeline.DataPipeline(
        template_featurizer=featurizer, direct_templates=tuple(direct), max_template_date=args.max_template_date,
        jackhmmer_uniref90=jack(args.uniref90_database), jackhmmer_mgnify=jack(args.mgnify_database),
        hhblits_bfd=HHBlits(args.bfd_database, n_cpu=args.n_cpu, cache_dir=cache) if args.bfd_database else None,
        template_searcher=searcher)


def make_features(args) -> dict:
    """The raw feature dict for parsed ``args`` (what the command writes)."""
    if args.template_hits and not args.mmcif_dir:
        raise InputError("--template-hits needs --mmcif-dir (where the template structures are)")
    data_pipeline = build_pipeline(args)
    ground_truth = None
    if args.ground_truth:
        path, chain, extra = _split_spec(args.ground_truth, "--ground-truth")
        if extra is not None:
            raise InputError(f"--ground-truth must look like MMCIF:CHAIN, got {args.ground_truth!r}")
        ground_truth = (path, chain)
    return data_pipeline.process(args.fasta, args.alignments_dir, template_hit_files=args.template_hits or None,
                                 ground_truth=ground_truth, resolution=args.resolution)


def run(args) -> int:
    features = make_features(args)
    save_npz(args.out, features)
    n_msa = int(features["msa"].shape[0])
    n_templ = int(features["template_aatype"].shape[0])
    print(f"wrote {args.out}: {len(features['aatype'])} residues, {n_msa} MSA rows, {n_templ} templates")
    return 0
