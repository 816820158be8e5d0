"""`jobqueue submit TYPE`: submit one job straight to the database (admin
tool; clients use the HTTP API). Prints the job as JSON.

The tenant comes from --tenant or JOBQUEUE_TENANT. With --idempotency-key,
submitting the same request again returns the existing job ("replayed":
true); the same key with a different request is refused (exit 4).

The job is checked as the HTTP API checks it (`jobqueue.validation`): a
type, queue, key, number or payload the API would refuse is refused here
(exit 2) and nothing is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from jobqueue import db, validation
from jobqueue.commands.common import job_json, with_pool
from jobqueue.db import jobs
from jobqueue.models import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT_SECONDS,
    JSON,
    Job,
    NewJob,
    Priority,
    TenantId,
)
from jobqueue.settings import RuntimeSettings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("submit", help="submit one job")
    p.add_argument("type", help="job type, e.g. echo or sleep")
    p.add_argument("--data", default="{}", help='JSON payload, e.g. \'{"seconds": 2}\'; '
                   "@file reads it from a file, @- from stdin")
    p.add_argument("--tenant", help="tenant id (default: JOBQUEUE_TENANT)")
    p.add_argument("--queue", default="default")
    p.add_argument("--priority", default="normal",
                   help="low, normal, high or critical (or 0 to 3)")
    p.add_argument("--idempotency-key")
    p.add_argument("--max-attempts", type=int, default=None,
                   help="attempts before the DLQ (default: the queue's default, "
                   f"else {DEFAULT_MAX_ATTEMPTS})")
    p.add_argument("--timeout-seconds", type=int, default=DEFAULT_TIMEOUT_SECONDS)
    p.add_argument("--delay-seconds", type=float, help="run no earlier than this from now")
    p.set_defaults(func=run)


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


def run_at_after(delay_seconds: float | None) -> datetime | None:
    if delay_seconds is None:
        return None
    if not math.isfinite(delay_seconds):
        raise ValueError(f"--delay-seconds must be a finite number, not {delay_seconds}")
    try:
        return datetime.now(UTC) + timedelta(seconds=delay_seconds)
    except OverflowError:
        raise ValueError(
            f"--delay-seconds {delay_seconds:g} is out of range (the time must fall "
            "between years 1 and 9999)"
        ) from None


def tenant_of(raw: str | None) -> TenantId:
    if not raw:
        raise ValueError("which tenant? pass --tenant or set JOBQUEUE_TENANT")
    if (problem := validation.tenant_id_problem(raw)) is not None:
        raise ValueError(problem)
    return TenantId(raw)


async def submit(pool: db.Pool, tenant: TenantId, job: NewJob) -> tuple[Job, bool]:
    done = await jobs.submit(pool, tenant_id=tenant, job=job)
    return done.job, done.replayed


def run(args: argparse.Namespace) -> int:
    settings = RuntimeSettings()
    tenant = tenant_of(args.tenant if args.tenant is not None else settings.cli.tenant)
    new = NewJob(
        type=args.type,
        data=parse_data(args.data),
        queue=args.queue,
        priority=parse_priority(args.priority),
        max_attempts=args.max_attempts,
        timeout_seconds=args.timeout_seconds,
        run_at=run_at_after(args.delay_seconds),
        idempotency_key=args.idempotency_key,
    )
    # The API's rules, not only the table's: the db layer checks the latter.
    validation.check_new_job(new)
    job, replayed = asyncio.run(
        with_pool(settings.database, lambda pool: submit(pool, tenant, new))
    )
    print(json.dumps(job_json(job, replayed=replayed)))
    return 0
