"""Is the database there, and does it hold the schema this code needs?
(readiness probes)"""

from __future__ import annotations

from jobqueue.db import Executor, migrations, queries, translate

Q = queries.load("health")


@translate
async def schema_version(conn: Executor) -> int:
    """The newest migration applied; 0 on a database without our schema."""
    if not await conn.fetchval(Q["has_migrations_table"]):
        return 0
    return int(await conn.fetchval(Q["schema_version"]))


async def ping(conn: Executor) -> bool:
    """True when reachable and migrated at least to this code's newest
    migration, with this code's functions applied (now, or before a newer
    version replaced them); False when reachable but behind (a pod of a new
    version stays unready until `jobqueue migrate` has run, instead of
    answering 500s on columns or function arguments that do not exist yet).

    Raises DatabaseUnavailable when the server cannot be reached.
    """
    if await schema_version(conn) < migrations.available()[-1].version:
        return False
    return await migrations.functions_applied(conn)
