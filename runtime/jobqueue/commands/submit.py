"""`jobqueue submit TYPE`: submit one job straight to the database (admin
tool; clients use the HTTP API). Prints the job as JSON.

The tenant comes from --tenant or JOBQUEUE_TENANT. With --idempotency-key,
submitting the same request again returns the existing job ("replayed":
true); the same key with a different request is refused (exit 4).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from jobqueue import db
from jobqueue.db import jobs
from jobqueue.models import Job, NewJob, Priority, TenantId
from jobqueue.settings import DatabaseSettings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("submit", help="submit one job")
    p.add_argument("type", help="job type, e.g. echo or sleep")
    p.add_argument("--data", default="{}", help='JSON payload, e.g. \'{"seconds": 2}\'; '
                   "@file reads it from a file, @- from stdin")
    p.add_argument("--tenant", default=os.environ.get("JOBQUEUE_TENANT"),
                   help="tenant id (default: JOBQUEUE_TENANT)")
    p.add_argument("--queue", default="default")
    p.add_argument("--priority", default="normal", help="low, normal, high or critical")
    p.add_argument("--idempotency-key")
    p.add_argument("--max-attempts", type=int, default=None,
                   help="attempts before the DLQ (default: the queue's default, else 5)")
    p.add_argument("--timeout-seconds", type=int, default=300)
    p.add_argument("--delay-seconds", type=float, help="run no earlier than this from now")
    p.set_defaults(func=run)


def parse_data(raw: str) -> Any:
    if raw.startswith("@"):
        raw = sys.stdin.read() if raw == "@-" else open(raw[1:]).read()  # noqa: SIM115
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"--data is not valid JSON: {exc}") from None


def job_json(job: Job, **extra: object) -> dict[str, Any]:
    return {
        "id": str(job.id),
        "tenant_id": job.tenant_id,
        "queue": job.queue,
        "type": job.type,
        "status": job.status.value,
        "priority": job.priority.name.lower(),
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "idempotency_key": job.idempotency_key,
        "scheduled_at": job.scheduled_at.isoformat(),
        "created_at": job.created_at.isoformat(),
        **extra,
    }


async def submit(dsn: str, tenant: TenantId, job: NewJob) -> tuple[Job, bool]:
    pool = await db.create_pool(dsn, min_size=1, max_size=1)
    try:
        done = await jobs.submit(pool, tenant_id=tenant, job=job)
        return done.job, done.replayed
    finally:
        await pool.close()


def run(args: argparse.Namespace) -> int:
    if not args.tenant:
        raise ValueError("which tenant? pass --tenant or set JOBQUEUE_TENANT")
    run_at = None
    if args.delay_seconds is not None:
        run_at = datetime.now(UTC) + timedelta(seconds=args.delay_seconds)
    new = NewJob(
        type=args.type,
        data=parse_data(args.data),
        queue=args.queue,
        priority=Priority.parse(args.priority),
        max_attempts=args.max_attempts,
        timeout_seconds=args.timeout_seconds,
        run_at=run_at,
        idempotency_key=args.idempotency_key,
    )
    job, replayed = asyncio.run(submit(DatabaseSettings().dsn(), TenantId(args.tenant), new))
    print(json.dumps(job_json(job, replayed=replayed)))
    return 0
