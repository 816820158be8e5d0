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
    for m in applied.migrations:
        print(f"applied {m.version:04d}_{m.name}")
    for d in applied.definitions:
        print(f"applied functions/{d.name}.sql")
    if not applied:
        print("schema is up to date")
    return 0
