"""jobqueue: a multi-tenant job queue on PostgreSQL.

Each subcommand lives in `jobqueue.commands.<name>` with `register(subparsers)`;
this module only wires them and turns every error into one readable line on
stderr and an exit code: 2 for bad input (flags, values, configuration), 1
for a failure while running, and the more specific 3 (not found), 4
(conflict) and 5 (database unavailable: retry) that scripts rely on. No
traceback is printed unless JOBQUEUE_DEBUG=1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from pydantic import ValidationError

from jobqueue import errors
from jobqueue.settings import RuntimeSettings

# Order is the order of `jobqueue --help`.
COMMANDS = ["dev", "migrate", "api", "worker", "reaper", "submit", "tenant", "jobs", "schedule"]

EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_UNAVAILABLE = 5
EXIT_ERROR = 1
# Longer messages are cut: a line, not a page (a driver's message can quote a lot).
MAX_MESSAGE = 500


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors on one line (its default prints the whole
    usage first). Subcommand parsers are made of the same class."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see --help)\n")


def one_line(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_MESSAGE else flat[: MAX_MESSAGE - 3] + "..."


def describe(exc: ValidationError) -> str:
    """A settings or input model's errors, by field, without the input values
    pydantic would print (a value may be a secret)."""
    parts = [f"{'.'.join(str(p) for p in e['loc']) or exc.title}: {e['msg']}"
             for e in exc.errors(include_url=False, include_input=False)]
    return f"invalid {exc.title}: " + "; ".join(parts)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """All subcommands, or just `only`: importing every command module pulls
    in FastAPI, uvicorn and the worker, about a second of start-up that
    `jobqueue submit` or `jobqueue jobs list` should not pay."""
    parser = Parser(prog="jobqueue", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in [only] if only in COMMANDS else COMMANDS:
        importlib.import_module(f"jobqueue.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if RuntimeSettings().cli.debug == "1":
            raise
        message, status = explain(exc)
        print(f"jobqueue: {one_line(message)}", file=sys.stderr)
        return status
    return code


def explain(exc: Exception) -> tuple[str, int]:
    """The line to print for `exc` and the exit code."""
    match exc:
        case errors.NotFound():
            return str(exc), EXIT_NOT_FOUND
        case errors.IdempotencyConflict() | errors.InvalidTransition():
            return str(exc), EXIT_CONFLICT
        case errors.DatabaseUnavailable() | errors.DatabaseRefused() if isinstance(
            exc.__cause__, ValueError
        ):
            # The driver could not even parse the URL: configuration, not an outage.
            return f"invalid database URL: {exc.__cause__}", EXIT_USAGE
        case errors.DatabaseUnavailable():
            return str(exc), EXIT_UNAVAILABLE
        case ValidationError():
            return describe(exc), EXIT_USAGE
        case errors.InvalidInput() | ValueError():
            return str(exc), EXIT_USAGE
        case errors.JobQueueError():
            return str(exc), EXIT_ERROR
        case OSError():
            return f"{type(exc).__name__}: {exc}", EXIT_ERROR
        case _:
            return (f"unexpected {type(exc).__name__}: {exc} "
                    "(JOBQUEUE_DEBUG=1 shows the traceback)", EXIT_ERROR)


if __name__ == "__main__":
    sys.exit(main())
