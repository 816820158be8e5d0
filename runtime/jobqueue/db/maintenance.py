"""What the reaper does to the jobs table: rescue expired leases (history:
db/history.py)."""

from __future__ import annotations

from jobqueue.db import Executor, queries, rows, translate
from jobqueue.models import Transition

Q = queries.load("maintenance")


@translate
async def reap_expired(conn: Executor, *, limit: int = 500) -> list[Transition]:
    """Expired leases -> queued, or -> dlq on the last attempt (compare-and-set)."""
    return [rows.transition(r) for r in await conn.fetch(Q["reap_expired"], limit)]
