"""`jobqueue migrate`: apply pending schema migrations (safe to run twice)."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from jobqueue.commands.common import migrate
from jobqueue.settings import RuntimeSettings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("migrate", help=__doc__.split(":", 1)[1].strip())
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    applied = asyncio.run(migrate(RuntimeSettings().database))
    if applied:
        for m in applied:
            print(f"applied {m.version:04d}_{m.name}")
    else:
        print("schema is up to date")
    return 0
