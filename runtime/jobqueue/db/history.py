"""Finished jobs' history: moved out of the hot table in batches, kept in
day partitions, dropped a whole day at a time (versions/0014_job_history.sql,
functions/history.sql).

Only the elected reaper calls `ensure_partitions`, `archive` and
`drop_expired`; readers see history through the view `jobs_all`
(db/jobs.py `get`, db/listing.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from jobqueue import errors
from jobqueue.db import Executor, queries, rows, translate
from jobqueue.models import Job, JobId, TenantId

Q = queries.load("history")

# A partition drop waits this long for readers of history before it gives
# up until the next pass; readers queue behind it no longer than this.
DROP_WAIT_MS = 2000


@dataclass(frozen=True, slots=True)
class Archived:
    moved: int  # jobs that left the hot table
    kept: int  # of them, those that went to history (the rest were past retention)


@dataclass(frozen=True, slots=True)
class Partition:
    name: str
    rows_estimate: int


@translate
async def ensure_partitions(
    conn: Executor, *, retention_seconds: float, days_ahead: int = 2
) -> int:
    """Make the day partitions the next archive passes need; returns how many."""
    return int(await conn.fetchval(Q["ensure"], retention_seconds, days_ahead))


@translate
async def archive(
    conn: Executor, *, after_seconds: float, retention_seconds: float, limit: int = 1000
) -> Archived:
    """Move up to `limit` jobs finished more than `after_seconds` ago to history."""
    r = await conn.fetchrow(Q["archive"], retention_seconds, after_seconds, limit)
    return Archived(moved=int(r["moved"]), kept=int(r["kept"]))


@translate
async def drop_expired(
    conn: Executor, *, retention_seconds: float, wait_ms: int = DROP_WAIT_MS
) -> list[str]:
    """Drop the day partitions wholly past retention; returns their names."""
    return [r["part"] for r in await conn.fetch(Q["drop_expired"], retention_seconds, wait_ms)]


@translate
async def partitions(conn: Executor) -> list[Partition]:
    found = await conn.fetch(Q["partitions"])
    return [Partition(r["name"], int(r["rows_estimate"])) for r in found]


@translate
async def retry_archived(
    conn: Executor, *, job_id: JobId, tenant_id: TenantId | None, reset_attempts: bool
) -> Job | None:
    """A dlq or cancelled job of history back to `jobs`, queued; None when
    history holds no such job."""
    try:
        r = await conn.fetchrow(Q["retry_archived"], [job_id], tenant_id, reset_attempts)
    except asyncpg.UniqueViolationError as exc:
        raise errors.InvalidTransition(
            f"job {job_id} cannot be retried: its idempotency key now names another job"
        ) from exc
    return rows.job(r) if r is not None else None
