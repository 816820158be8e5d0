"""`jobqueue submit TYPE`: submit one job straight to the database (admin
tool; clients use the HTTP API). Prints the job as JSON.

The tenant comes from --tenant or JOBQUEUE_TENANT. With --idempotency-key,
submitting the same request again returns the existing job ("replayed":
true); the same key with a different request is refused (exit 4). With
--unique (or --unique-keys, --unique-period-seconds, --unique-states) a
duplicate of a unique job prints the existing job with "duplicate": true.

The job is checked as the HTTP API checks it (`jobqueue.validation`): a
type, queue, key, number or payload the API would refuse is refused here
(exit 2) and nothing is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from jobqueue import db, unique, validation
from jobqueue.commands.common import (
    acting_tenant,
    add_tenant_flag,
    job_json,
    parse_data,
    parse_priority,
    with_pool,
)
from jobqueue.db import jobs
from jobqueue.models import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT_SECONDS,
    JobStatus,
    NewJob,
    Submitted,
    TenantId,
    Unique,
)
from jobqueue.settings import RuntimeSettings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("submit", help="submit one job")
    p.add_argument("type", help="job type, e.g. echo or sleep")
    p.add_argument("--data", default="{}", help='JSON payload, e.g. \'{"seconds": 2}\'; '
                   "@file reads it from a file, @- from stdin")
    add_tenant_flag(p)
    p.add_argument("--queue", default="default")
    p.add_argument("--priority", default="normal",
                   help="low, normal, high or critical (or 0 to 3)")
    p.add_argument("--idempotency-key")
    p.add_argument("--max-attempts", type=int, default=None,
                   help="attempts before the DLQ (default: the queue's default, "
                   f"else {DEFAULT_MAX_ATTEMPTS})")
    p.add_argument("--timeout-seconds", type=int, default=DEFAULT_TIMEOUT_SECONDS)
    p.add_argument("--delay-seconds", type=float, help="run no earlier than this from now")
    u = p.add_argument_group("unique jobs (any of these makes the job unique)")
    u.add_argument("--unique", action="store_true",
                   help="no second job with the same type, queue and data")
    u.add_argument("--unique-keys", help="comma-separated keys of --data that identify the job")
    u.add_argument("--unique-period-seconds", type=int, help="a job blocks duplicates this long")
    u.add_argument("--unique-states",
                   help="comma-separated states that block (default: all but dlq, cancelled)")
    p.set_defaults(func=run)


def unique_of(args: argparse.Namespace) -> Unique | None:
    """The --unique* flags as a Unique, or None when none is given."""
    keys, period, states = args.unique_keys, args.unique_period_seconds, args.unique_states
    if not (args.unique or keys is not None or period is not None or states is not None):
        return None

    def split(raw: str | None) -> list[str] | None:
        return None if raw is None else [x.strip() for x in raw.split(",") if x.strip()]

    try:
        return unique.of(split(keys), period, split(states))
    except ValueError:
        known = ", ".join(s.value for s in JobStatus)
        raise ValueError(f"--unique-states {states!r}: expected some of {known}") from None


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


async def submit(pool: db.Pool, tenant: TenantId, job: NewJob) -> Submitted:
    return await jobs.submit(pool, tenant_id=tenant, job=job)


def run(args: argparse.Namespace) -> int:
    settings = RuntimeSettings()
    tenant = acting_tenant(args, settings)
    new = NewJob(
        type=args.type,
        data=parse_data(args.data),
        queue=args.queue,
        priority=parse_priority(args.priority),
        max_attempts=args.max_attempts,
        timeout_seconds=args.timeout_seconds,
        run_at=run_at_after(args.delay_seconds),
        idempotency_key=args.idempotency_key,
        unique=unique_of(args),
    )
    # The API's rules, not only the table's: the db layer checks the latter.
    validation.check_new_job(new)
    done = asyncio.run(with_pool(settings.database, lambda pool: submit(pool, tenant, new)))
    print(json.dumps(job_json(done.job, replayed=done.replayed, duplicate=done.duplicate)))
    return 0
