"""``mindsponge-fold make-mindrecord``: precomputed raw features (+ mmCIF labels) -> sharded MindRecord files."""
from __future__ import annotations

import sys

from mindsponge_fold.commands import options


def add_arguments(parser) -> None:
    parser.add_argument("--features-dir", required=True,
                        help="directory of <name>.npz (or <name>/features.npz) raw feature files; .pkl with "
                             "--allow-pickle")
    parser.add_argument("--out", required=True, help="output path prefix, e.g. data/train.mindrecord")
    parser.add_argument("--shards", type=int, default=1, help="number of MindRecord shard files")
    parser.add_argument("--mmcif-dir", default=None,
                        help="take labels (atom37 coordinates, resolution) of sample <pdb>_<chain> from "
                             "DIR/<pdb>.cif when the feature file has none")
    parser.add_argument("--chain-table", metavar="TSV",
                        help="make-training-set's chains.tsv: each sample's cluster id / size, resolution and "
                             "release date go into the manifest (training samples by cluster, Suppl. 1.2.5; "
                             "without it every sample is its own cluster)")
    parser.add_argument("--allow-pickle", action="store_true",
                        help="also read AlphaFold features.pkl-style pickles (they can run code: trusted files only)")
    parser.add_argument("--max-seq-length", type=int, default=None,
                        help="skip longer chains (default: data.train.max_seq_length of the config)")
    options.add_config_options(parser, help_default="base; the config gives the default --max-seq-length")
    options.add_progress_option(parser)


def run(args) -> int:
    from mindsponge_fold.data.mindrecord import convert, manifest_path

    max_len = args.max_seq_length
    if max_len is None:
        max_len = options.load_config_from_args(args).data.train.max_seq_length
    manifest = convert(args.features_dir, args.out, num_shards=args.shards, mmcif_dir=args.mmcif_dir,
                       allow_pickle=args.allow_pickle, max_seq_length=max_len, progress=not args.no_progress,
                       chain_table=args.chain_table)
    written = sum(s["num_samples"] for s in manifest["shards"])
    skipped = sum(len(s.get("skipped", {})) for s in manifest["shards"])
    print(f"{written} samples in {sum(1 for s in manifest['shards'] if s['file'])} shard file(s); "
          f"{skipped} skipped; manifest {manifest_path(args.out)}", file=sys.stdout)
    return 0
