"""What several subcommands share; subcommands import this, never each other.

Settings come from one `RuntimeSettings` a command builds with its flags as
overrides; every database connection of the CLI is opened from its
`database` section, so `JOBQUEUE_DATABASE_STATEMENT_CACHE_SIZE=0` (PgBouncer
in transaction mode) holds for the CLI too.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from jobqueue import apikeys, db, jobview, validation
from jobqueue.db import migrations, tenants
from jobqueue.models import JSON, Job, Priority, TenantId
from jobqueue.observability import logging as obslog
from jobqueue.settings import DatabaseSettings, RuntimeSettings

T = TypeVar("T")
APPLICATION_NAME = "jobqueue-cli"


def add_actions(sub: Any, name: str, help: str) -> Any:
    """The subcommand `name`, whose actions (`jobqueue NAME ACTION`) are added
    to what this returns."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help)
    return p.add_subparsers(dest="action", required=True, metavar="ACTION")


def add_logging_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--log-format", choices=["json", "console"],
                   help="json lines (default) or human-readable (JOBQUEUE_LOG_FORMAT)")
    p.add_argument("--log-level", help="default INFO (JOBQUEUE_LOG_LEVEL)")


def flags(args: argparse.Namespace, *names: str) -> dict[str, object]:
    """The named flags as settings overrides (None: not given)."""
    return {name: getattr(args, name) for name in names}


def log_flags(args: argparse.Namespace) -> dict[str, object]:
    return {"format": args.log_format, "level": args.log_level}


def configure_logging(settings: RuntimeSettings) -> None:
    obslog.configure(json=settings.log.format == "json", level=settings.log.level)


async def with_pool(database: DatabaseSettings, fn: Callable[[db.Pool], Awaitable[T]]) -> T:
    """`fn(pool)` on a one-connection pool of the CLI, closed afterwards."""
    pool = await db.open_pool(database, application_name=APPLICATION_NAME, min_size=1,
                              max_size=1)
    try:
        return await fn(pool)
    finally:
        await pool.close()


def run_loop(main: Awaitable[T]) -> T:
    """Run a long-lived process's coroutine on uvloop when it is installed
    (fewer CPU cycles per database round trip and per request), else on
    asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)  # type: ignore[arg-type]
    return uvloop.run(main)  # type: ignore[arg-type]


def run_with_pool(fn: Callable[[db.Pool], Awaitable[T]]) -> T:
    """`with_pool` on the environment's database, from synchronous code."""
    return asyncio.run(with_pool(RuntimeSettings().database, fn))


async def migrate(
    database: DatabaseSettings, *, dsn: str | None = None
) -> migrations.Applied:
    conn = await db.open_connection(database, application_name=APPLICATION_NAME, dsn=dsn)
    try:
        return await migrations.migrate(conn)
    finally:
        await conn.close()


async def new_key(pool: db.Executor, tenant_id: TenantId) -> str:
    """A new API key of the tenant; only its digest is stored."""
    key = apikeys.generate()
    await tenants.add_api_key(pool, tenant_id=tenant_id, key_hash=apikeys.digest(key))
    return key


def tenant_id(raw: str) -> TenantId:
    """The tenant id, checked before any SQL (the table's check would print its row)."""
    if (problem := validation.tenant_id_problem(raw)) is not None:
        raise ValueError(problem)
    return TenantId(raw)


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _plain(value: object) -> object:
    """A value of `jobview` as JSON: times in ISO 8601, ids as text."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def job_json(job: Job, *, full: bool = False, **extra: object) -> dict[str, Any]:
    """A job as the CLI prints it: `jobview.summary` (or, `full`, everything
    an operator may see, the lease's owner and deadline included)."""
    view = jobview.shown(job, internal=True) if full else jobview.summary(job)
    return {**{k: _plain(v) for k, v in view.items()}, **extra}


def read_data(raw: str) -> str:
    """--data's text: itself, or @file's or @-'s (stdin) contents."""
    if not raw.startswith("@"):
        return raw
    if raw == "@-":
        return sys.stdin.read()
    path = raw[1:]
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise ValueError(f"cannot read --data file {path!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"--data file {path!r} is not UTF-8 text") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def parse_data(raw: str) -> JSON:
    text = read_data(raw)
    problem: str | None
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        data = None
        problem = f"is nested more than {validation.MAX_JSON_DEPTH} levels deep (the limit)"
    except ValueError as exc:
        raise ValueError(f"--data is not valid JSON: {exc}") from None
    else:
        problem = validation.data_problem(data)
    if problem is not None:
        raise ValueError(f"--data {problem}")
    return data


def parse_priority(raw: str) -> Priority:
    """A name, or 0 to 3, as the API takes it."""
    if raw.isascii() and raw.isdigit() and int(raw) in Priority._value2member_map_:
        return Priority(int(raw))
    try:
        return Priority.parse(raw)
    except ValueError:
        raise ValueError(
            f"--priority {raw!r}: expected low, normal, high, critical or 0 to 3"
        ) from None


def tenant_of(raw: str | None) -> TenantId:
    if not raw:
        raise ValueError("which tenant? pass --tenant or set JOBQUEUE_TENANT")
    return tenant_id(raw)


def tenant_filter(raw: str | None) -> TenantId | None:
    """A listing's --tenant: None (every tenant's) when not given."""
    return tenant_id(raw) if raw else None


def add_tenant_flag(p: argparse.ArgumentParser) -> None:
    """--tenant, for a command that acts for one tenant (`acting_tenant`)."""
    p.add_argument("--tenant", help="tenant id (default: JOBQUEUE_TENANT)")


def acting_tenant(args: argparse.Namespace, settings: RuntimeSettings) -> TenantId:
    """--tenant, else JOBQUEUE_TENANT; refused if neither names a valid tenant."""
    return tenant_of(args.tenant if args.tenant is not None else settings.cli.tenant)
