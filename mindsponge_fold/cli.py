"""``mindsponge-fold`` command line: one subcommand per job.

Each subcommand lives in its own module, which defines ``add_arguments(parser)`` and ``run(args) -> int``; this file
only lists them, so importing the CLI stays cheap (MindSpore is imported by the subcommands that need it).
Errors in user input (``InputError``, ``ConfigError``, ``ToolError``) print as one line and exit with status 2.
"""
import argparse
import importlib
import sys

from mindsponge_fold.common.errors import ConfigError, InputError, ToolError

# name -> (module, one-line help)
SUBCOMMANDS = {
    "run-features": ("mindsponge_fold.model.run_features", "run the network on AlphaFold-format processed features"),
    "convert-params": ("mindsponge_fold.model.convert", "convert AlphaFold .npz weights to a MindSpore checkpoint (and back)"),
    "params-table": ("mindsponge_fold.model.convert", "print the AlphaFold-name -> Cell-parameter table"),
    "make-features": ("mindsponge_fold.data.cli", "build AlphaFold raw features from a FASTA and alignments"),
    "make-mindrecord": ("mindsponge_fold.data.mindrecord_cli", "convert precomputed features + mmCIF labels to MindRecord"),
    "train": ("mindsponge_fold.train.cli", "train or fine-tune the model"),
    "predict": ("mindsponge_fold.predict", "FASTA -> structures with confidence (pLDDT, PAE, pTM), optionally relaxed"),
    "relax": ("mindsponge_fold.relax.cli", "Amber-relax a PDB file"),
    "evaluate": ("mindsponge_fold.eval.cli", "score predictions against native structures (TM, GDT, lDDT, RMSD)"),
}


def _load(name):
    module_name = SUBCOMMANDS[name][0]
    module = importlib.import_module(module_name)
    # A module serving several subcommands exposes add_arguments_<name> / run_<name> (dashes -> underscores).
    suffix = name.replace("-", "_")
    add = getattr(module, f"add_arguments_{suffix}", None) or module.add_arguments
    run = getattr(module, f"run_{suffix}", None) or module.run
    return add, run


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="mindsponge-fold", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    name = argv[0]
    if name not in SUBCOMMANDS:
        parser.error(f"unknown command '{name}' (choose from {', '.join(SUBCOMMANDS)})")
    add, run = _load(name)
    sub_parser = argparse.ArgumentParser(prog=f"mindsponge-fold {name}", description=SUBCOMMANDS[name][1])
    add(sub_parser)
    args = sub_parser.parse_args(argv[1:])
    try:
        return int(run(args) or 0)
    except (InputError, ConfigError, ToolError) as e:
        print(f"mindsponge-fold {name}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
