"""``mindsponge-fold make-features``: FASTA + alignment directory (+ templates, + ground truth) -> raw_features.npz.

Alignments are read from --alignments-dir under AlphaFold's names (uniref90_hits.sto, bfd_uniclust_hits.a3m,
mgnify_hits.sto, pdb70_hits.hhr); a missing one is computed when its database is given (--uniref90-database ...).
Templates: search hits (--template-hits, or pdb70_hits.hhr / pdb_hits.sto in the directory) read with --mmcif-dir,
and/or direct templates --template MMCIF:CHAIN[:MAP] with MAP = 'identity', a JSON file holding the L-long
query->template index list (-1 = unaligned), or omitted for a BLOSUM62 global alignment, and/or custom templates
--templates MMCIF|DIR (each file's best-aligning chain; with --template-hits, the hits read from those files only).
Every input must belong to the query: an MSA whose first row is not the query sequence (after AlphaFold's
normalisation: a3m insertions and Stockholm query-gap columns removed) and a template-hit file computed for another
query (an .hhr hit whose aligned query residues are not this query's, an hmmsearch hit spanning another number of
profile columns) are refused with a one-line error naming the file. A hit file is refused as a whole, not skipped
hit by hit: a search output belongs to one query, so one foreign hit means the file (or the FASTA) is the wrong one.
The output is written atomically.
"""
from __future__ import annotations

import json
from pathlib import Path

from mindsponge_fold.commands import options
from mindsponge_fold.common.errors import InputError
from mindsponge_fold.common.fileio import check_output_file, save_npz


def add_arguments(parser) -> None:
    parser.add_argument("--fasta", required=True, help="query FASTA (one record; its header is the domain name)")
    parser.add_argument("--alignments-dir", required=True, help="directory with the MSA / template-hit files")
    parser.add_argument("--out", required=True, help="output .npz of raw features")
    t = parser.add_argument_group("templates")
    t.add_argument("--template", action="append", default=[], metavar="MMCIF:CHAIN[:MAP]",
                   help="direct template; MAP = identity | mapping.json | omitted (BLOSUM62 global alignment)")
    options.add_template_hit_arguments(t)
    g = parser.add_argument_group("ground truth (training labels)")
    g.add_argument("--ground-truth", metavar="MMCIF:CHAIN", help="add all_atom_positions/all_atom_mask/resolution")
    g.add_argument("--resolution", type=float, help="resolution label override (e.g. for NMR entries)")
    options.add_search_arguments(parser.add_argument_group(
        "search tools (only used for alignments missing from --alignments-dir)"))


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


def direct_templates(specs) -> tuple:
    """``--template MMCIF:CHAIN[:MAP]`` values -> DirectTemplate entries."""
    from mindsponge_fold.data.pipeline import DirectTemplate
    out = []
    for spec in specs:
        path, chain, mapping = _split_spec(spec, "--template")
        out.append(DirectTemplate(path, chain, _load_mapping(mapping)))
    return tuple(out)


def make_features(args) -> dict:
    """The raw feature dict for parsed ``args`` (what the command writes)."""
    from mindsponge_fold.data.search import build_pipeline
    hits = options.template_hit_settings(args)
    data_pipeline = build_pipeline(options.search_settings(args), hits, direct_templates(args.template))
    ground_truth = None
    if args.ground_truth:
        path, chain, extra = _split_spec(args.ground_truth, "--ground-truth")
        if extra is not None:
            raise InputError(f"--ground-truth must look like MMCIF:CHAIN, got {args.ground_truth!r}")
        ground_truth = (path, chain)
    return data_pipeline.process(args.fasta, args.alignments_dir, template_hit_files=hits.hit_files or None,
                                 ground_truth=ground_truth, resolution=args.resolution)


def run(args) -> int:
    check_output_file(args.out)              # before any search or parsing
    features = make_features(args)
    save_npz(args.out, features)
    n_msa = int(features["msa"].shape[0])
    n_templ = int(features["template_aatype"].shape[0])
    print(f"wrote {args.out}: {len(features['aatype'])} residues, {n_msa} MSA rows, {n_templ} templates")
    return 0
