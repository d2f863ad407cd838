"""``mindsponge-fold`` command line: one subcommand per job.

Each subcommand is a module of :mod:`mindsponge_fold.commands` with ``add_arguments(parser)`` and ``run(args) ->
int``; this file only dispatches, importing just the chosen one, so the CLI stays cheap (MindSpore is imported by
the subcommands that need it). Errors in user input (``InputError``, ``ConfigError``, ``ToolError``) and in the
arguments themselves (argparse's usage errors) print as one line and exit with status 2.
"""
import argparse
import importlib
import sys

from mindsponge_fold.commands import SUBCOMMANDS
from mindsponge_fold.common.errors import ConfigError, InputError, ToolError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``PROG: error: MESSAGE (see PROG --help)``), status 2, like every
    other refusal of bad input: not the usage block followed by the error."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = OneLineParser(prog="mindsponge-fold", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    name = argv[0]
    if name not in SUBCOMMANDS:
        parser.error(f"unknown command '{name}' (choose from {', '.join(SUBCOMMANDS)})")
    module_name, help_text = SUBCOMMANDS[name]
    command = importlib.import_module(f"mindsponge_fold.commands.{module_name}")
    sub_parser = OneLineParser(prog=f"mindsponge-fold {name}", description=help_text)
    command.add_arguments(sub_parser)
    args = sub_parser.parse_args(argv[1:])
    args.command_line = ["mindsponge-fold", *argv]          # recorded by commands that keep a run record
    try:
        return int(command.run(args) or 0)
    except (InputError, ConfigError, ToolError) as e:
        print(f"mindsponge-fold {name}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
