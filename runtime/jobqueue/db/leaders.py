"""Leader election on a row with an expiry, on the database clock.

No session state (advisory locks die with PgBouncer's transaction mode):
the holder extends its row before it expires; anyone may take an expired
row. A holder that cannot renew in time must stop acting as leader.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jobqueue import errors
from jobqueue.db import Executor, queries, translate

Q = queries.load("leaders")


@dataclass(frozen=True, slots=True)
class LeaderTerm:
    """Who holds a leader row and until when (by the database clock)."""

    holder: str
    expires_at: datetime
    transitions: int


@translate
async def acquire_or_renew(
    conn: Executor, *, name: str, candidate: str, lease_seconds: float
) -> LeaderTerm:
    r = await conn.fetchrow(Q["acquire_or_renew"], name, candidate, lease_seconds)
    if r is None:
        # A rival's first claim of this name committed while ours waited on
        # it: our INSERT yielded to its row, which this statement's snapshot
        # predates. The next statement sees it.
        r = await conn.fetchrow(Q["acquire_or_renew"], name, candidate, lease_seconds)
    if r is None:
        raise errors.DatabaseUnavailable(f"leader row {name!r} vanished while claiming it")
    return LeaderTerm(r["holder"], r["expires_at"], r["transitions"])


@translate
async def release(conn: Executor, *, name: str, candidate: str) -> bool:
    return await conn.fetchval(Q["release"], name, candidate) is not None


@translate
async def get(conn: Executor, *, name: str) -> LeaderTerm | None:
    r = await conn.fetchrow(Q["get"], name)
    return LeaderTerm(r["holder"], r["expires_at"], r["transitions"]) if r else None
