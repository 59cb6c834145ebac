"""What every command line of the application shares: its parser, its errors, library messages in flag names,
clean warnings.

The library and the application's modules name their own arguments ("HueNetLoss: `mi_channels` must be ...");
only a command line knows its flags, so each one translates with :func:`flag_message`. A problem the user can
fix ends in one line on stderr: exit 2 for a usage error, 1 for a run-time one, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import warnings

from tqdm import tqdm

USAGE, RUNTIME = 2, 1
DEVICE_HELP = "auto, cpu, cuda or cuda:N"
# "<op>: `<arg>` must be ...; got ..." -- the form of every argument check (huenet._checks).
_ARG_MESSAGE = re.compile(r"^[\w.]+: `(\w+)` (.*)$", re.DOTALL)


def command_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The parser of the command ``prog``, whose ``--help`` shows each flag's default."""
    return argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )


def add_device_flag(parser, default: str = "auto") -> None:
    """``--device``, the device a command runs on (resolved by :func:`~.runtime.resolve_device`)."""
    parser.add_argument("--device", default=default, help=DEVICE_HELP)


class RunError(Exception):
    """A problem the user can fix (flags, data, run folder) or a run that had to stop; printed without a trace.

    ``code`` is the exit status: :data:`USAGE` for a bad flag, :data:`RUNTIME` otherwise.
    """

    def __init__(self, message: str, code: int = RUNTIME):
        super().__init__(message)
        self.code = code


class UsageError(RunError):
    """A flag with a value that cannot work (exit 2)."""

    def __init__(self, message: str):
        super().__init__(message, USAGE)


def flag_message(err: Exception, flags: dict[str, str]) -> str:
    """``err``'s message with a library argument named by its flag: "--mi-channels must be ...; got ...".

    ``flags`` maps argument names to flags; a message about another argument is returned unchanged.

    Example:
        >>> flag_message(ValueError("HueNetLoss: `mi_channels` must be 'h', 's' or 'v'; got 'q'"),
        ...              {"mi_channels": "--mi-channels"})
        "--mi-channels must be 'h', 's' or 'v'; got 'q'"
    """
    match = _ARG_MESSAGE.match(str(err))
    if match and match.group(1) in flags:
        return f"{flags[match.group(1)]} {match.group(2)}"
    return str(err)


def exit_with(prog: str, err: RunError) -> None:
    """End the command with ``err`` as one line on stderr and its exit status."""
    print(f"{prog}: error: {err}", file=sys.stderr)
    sys.exit(err.code)


@contextlib.contextmanager
def clean_warnings(prog: str):
    """Print each warning as one line, ``<prog>: warning: <message>``, above any progress bar, not through it."""

    def show(message, category, filename, lineno, file=None, line=None):
        tqdm.write(f"{prog}: warning: {message}", file=sys.stderr)

    previous = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous
