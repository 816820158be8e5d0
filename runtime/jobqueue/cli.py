"""The `jobqueue` command. Each subcommand lives in `jobqueue.commands.<name>`
with `register(subparsers)`; this module only wires them and turns expected
errors into one readable line and an exit code.
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jobqueue", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"jobqueue.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
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
