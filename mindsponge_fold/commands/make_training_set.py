"""``mindsponge-fold make-training-set``: a directory of mmCIFs + per-chain alignments -> the raw features and labels
of every chain passing AlphaFold 2's training-set filters (supplement 1.2.5), its chain table with clusters and a
per-chain report (:mod:`mindsponge_fold.data.training_set`)."""
from __future__ import annotations

import sys

from mindsponge_fold.commands import options
from mindsponge_fold.common.errors import InputError


def _defaults():
    from mindsponge_fold.data.training_set import TrainingSetSettings
    return TrainingSetSettings(mmcif_dir="", alignment_dir="", out_dir="")


def add_arguments(parser) -> None:
    d = _defaults()
    parser.add_argument("--mmcif-dir", required=True, help="directory of <pdb_id>.cif files (labels, dates, "
                                                             "resolution; also the template structures)")
    parser.add_argument("--alignment-dir", required=True,
                        help="one sub-directory <pdb_id>_<chain> per chain with AlphaFold's alignment files "
                             "(uniref90_hits.sto, mgnify_hits.sto, bfd_uniclust_hits.a3m; template hits "
                             "pdb70_hits.hhr, pdb_hits.sto or hmm_output.sto)")
    parser.add_argument("--out", required=True,
                        help="output directory: features/<chain_id>.npz, chains.tsv, report.tsv, state/")
    parser.add_argument("--chains", nargs="+", default=[], metavar="CHAIN_ID",
                        help="only these chains (<pdb_id>_<chain>; default: every alignment sub-directory)")
    g = parser.add_argument_group("filters (AlphaFold 2 supplement 1.2.5)")
    g.add_argument("--max-release-date", default=d.max_release_date, metavar="YYYY-MM-DD",
                   help=f"keep chains released before this date (default {d.max_release_date})")
    g.add_argument("--max-resolution", type=float, default=d.max_resolution,
                   help=f"keep entries with resolution below this, in A; entries without one (NMR) pass "
                        f"(default {d.max_resolution:g})")
    g.add_argument("--min-length", type=int, default=d.min_length,
                   help=f"keep chains of at least this many residues (default {d.min_length})")
    g.add_argument("--max-single-residue-fraction", type=float, default=d.max_single_residue_fraction,
                   help="reject a chain when one residue type is more than this fraction of it "
                        f"(default {d.max_single_residue_fraction:g})")
    g = parser.add_argument_group("clusters")
    g.add_argument("--cluster-file", help="PDB clusters file (clusters-by-entity-40.txt: one cluster per line, "
                                          "space-separated PDBID_ENTITYID); default: built-in greedy clustering")
    g.add_argument("--cluster-identity", type=float, default=d.cluster_identity,
                   help=f"built-in clustering: sequence identity threshold (default {d.cluster_identity:g})")
    g.add_argument("--cluster-coverage", type=float, default=d.cluster_coverage,
                   help=f"built-in clustering: aligned fraction of both chains (default {d.cluster_coverage:g})")
    g = parser.add_argument_group("templates (supplement 1.2.3)")
    g.add_argument("--no-templates", action="store_true", help="no template features")
    g.add_argument("--template-mmcif-dir", help="template structures (default: --mmcif-dir)")
    g.add_argument("--max-templates", type=int, default=d.max_templates,
                   help=f"featurised template hits per chain (default {d.max_templates})")
    g.add_argument("--kalign-binary", default=d.kalign_binary, help="kalign for template realignment")
    parser.add_argument("--workers", type=int, default=1, help="chains built in parallel (processes)")
    options.add_progress_option(parser)


def _settings(args):
    from mindsponge_fold.data.templates import parse_date
    from mindsponge_fold.data.training_set import TrainingSetSettings
    parse_date(args.max_release_date, "--max-release-date")
    checks = [("--max-resolution", args.max_resolution > 0, "must be > 0"),
              ("--min-length", args.min_length >= 1, "must be >= 1"),
              ("--max-single-residue-fraction", 0 < args.max_single_residue_fraction <= 1, "must be in (0, 1]"),
              ("--cluster-identity", 0 < args.cluster_identity <= 1, "must be in (0, 1]"),
              ("--cluster-coverage", 0 <= args.cluster_coverage <= 1, "must be in [0, 1]"),
              ("--max-templates", args.max_templates >= 0, "must be >= 0"),
              ("--workers", args.workers >= 1, "must be >= 1")]
    for option, ok, problem in checks:
        if not ok:
            raise InputError(f"{option} {problem}")
    return TrainingSetSettings(
        mmcif_dir=args.mmcif_dir, alignment_dir=args.alignment_dir, out_dir=args.out, chains=tuple(args.chains),
        cluster_file=args.cluster_file, cluster_identity=args.cluster_identity,
        cluster_coverage=args.cluster_coverage, max_resolution=args.max_resolution,
        max_release_date=args.max_release_date, min_length=args.min_length,
        max_single_residue_fraction=args.max_single_residue_fraction, templates=not args.no_templates,
        template_mmcif_dir=args.template_mmcif_dir, max_templates=args.max_templates,
        kalign_binary=args.kalign_binary, workers=args.workers, progress=not args.no_progress)


def run(args) -> int:
    from mindsponge_fold.data.training_set import build_training_set

    result = build_training_set(_settings(args))
    counts = {status: sum(o.status == status for o in result.outcomes) for status in ("ok", "filtered", "error")}
    clusters = len({r.cluster_id for r in result.records})
    print(f"{counts['ok']} chains written ({clusters} clusters), {counts['filtered']} filtered, {counts['error']} "
          f"errors; {result.rebuilt} built, {result.unchanged} unchanged; see {args.out}/report.tsv", file=sys.stdout)
    return 0
