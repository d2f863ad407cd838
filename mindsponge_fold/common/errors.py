"""Errors raised on bad user input. Their message is one line naming the file (when there is one) and the problem;
the CLI prints it without a traceback and exits with status 2. Input that is used but is probably not what was
meant (a DNA-looking query, an empty template-hit file...) gets one :func:`warn` line on stderr instead."""
import sys


class InputError(ValueError):
    """Malformed or unusable input (file content, argument, checkpoint...)."""

    def __init__(self, problem: str, path=None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.problem = problem
        where = ""
        if self.path is not None:
            where = self.path + (f":{line}" if line is not None else "") + ": "
        super().__init__(where + problem)


class ToolError(RuntimeError):
    """An external binary (jackhmmer, hhblits, kalign, TMscore...) is missing, failed or timed out."""


class ConfigError(ValueError):
    """Invalid configuration: unknown key, wrong type, bad override."""


def warn(problem: str, path=None, line: int | None = None) -> None:
    """One ``warning: FILE[:LINE]: PROBLEM`` line on stderr (the run goes on)."""
    print(f"warning: {InputError(problem, path, line)}", file=sys.stderr, flush=True)
