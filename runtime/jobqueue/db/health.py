"""Is the database there, and does it hold our schema? (readiness probes)"""

from __future__ import annotations

from jobqueue.db import Executor, queries, translate

Q = queries.load("health")


@translate
async def ping(conn: Executor) -> bool:
    """True when reachable and migrated, False when reachable but empty.

    Raises DatabaseUnavailable when the server cannot be reached.
    """
    return bool(await conn.fetchval(Q["ping"]))
