"""jobqueue: a multi-tenant job queue on PostgreSQL.

Each subcommand lives in `jobqueue.commands.<name>` with `register(subparsers)`;
this module only wires them and turns expected errors into one readable line
and an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from jobqueue import errors

# Order is the order of `jobqueue --help`.
COMMANDS = ["dev", "migrate", "api", "worker", "reaper", "submit", "tenant", "jobs"]

EXIT_USAGE = 2
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_UNAVAILABLE = 5
EXIT_ERROR = 1


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """All subcommands, or just `only`: importing every command module pulls
    in FastAPI, uvicorn and the worker, about a second of start-up that
    `jobqueue submit` or `jobqueue jobs list` should not pay."""
    parser = argparse.ArgumentParser(prog="jobqueue", description=__doc__.splitlines()[0])
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
    except errors.NotFound as exc:
        print(f"jobqueue: {exc}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except (errors.IdempotencyConflict, errors.InvalidTransition) as exc:
        print(f"jobqueue: {exc}", file=sys.stderr)
        return EXIT_CONFLICT
    except errors.DatabaseUnavailable as exc:
        print(f"jobqueue: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except (errors.JobQueueError, ValueError) as exc:
        print(f"jobqueue: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return code


if __name__ == "__main__":
    sys.exit(main())
