"""A pooled connection whose backend was killed (pg_terminate_backend, an
operator or a failover) fails its next statement as DatabaseUnavailable,
whatever asyncpg happens to raise, and the pool recovers.

Found by the chaos drain: about one time in fifteen, asyncpg answers a
statement on a freshly terminated connection with InternalClientError
("cannot switch to state 12; another operation (2) is in progress";
MagicStack/asyncpg#1069) instead of ConnectionDoesNotExistError. That
escaped the db layer untranslated, so the worker's fetcher treated it as
a crash: the side task ended and the whole worker stopped.
"""

from __future__ import annotations

from collections import Counter

import asyncpg
import pytest

from jobqueue import db, errors
from jobqueue.db import leases, stats
from jobqueue.models import WorkerId

pytestmark = pytest.mark.timeout(120)

ROUNDS = 200


async def test_a_terminated_connection_is_database_unavailable_and_the_pool_recovers(
    dsn: str,
) -> None:
    victim = await db.create_pool(dsn, min_size=1, max_size=1, application_name="victim")
    admin = await db.connect(dsn)
    causes: Counter[str] = Counter()
    try:
        for i in range(ROUNDS):
            assert await stats.depth(victim, tenant_id=None) == []  # connected, working
            await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                                " WHERE application_name = 'victim'")
            try:
                # Any statement; the worker's lease is where it bit.
                await leases.lease(victim, queue="default", worker_id=WorkerId(f"w{i}"),
                                   limit=1, lease_seconds=3)
                causes["none"] += 1
            except errors.DatabaseUnavailable as exc:
                causes[type(exc.__cause__).__name__] += 1
            # Anything else (the untranslated InternalClientError) fails here.
    finally:
        await admin.close()
        await victim.close()
    # The race was met, so the test exercised what it is about.
    assert causes[asyncpg.InternalClientError.__name__] > 0, causes
