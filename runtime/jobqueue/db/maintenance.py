"""What the reaper does to the jobs table: rescue expired leases, prune history."""

from __future__ import annotations

from jobqueue.db import Executor, queries, rows, translate
from jobqueue.models import JobId, Transition

Q = queries.load("maintenance")


@translate
async def reap_expired(conn: Executor, *, limit: int = 500) -> list[Transition]:
    """Expired leases -> queued, or -> dlq on the last attempt (compare-and-set)."""
    return [rows.transition(r) for r in await conn.fetch(Q["reap_expired"], limit)]


@translate
async def prune_finished(
    conn: Executor, *, older_than_seconds: float, limit: int = 1000
) -> list[JobId]:
    """Delete up to `limit` finished jobs older than the retention period."""
    found = await conn.fetch(Q["prune_finished"], older_than_seconds, limit)
    return [JobId(r["id"]) for r in found]
