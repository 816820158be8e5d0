"""The LISTEN keeper on a real database: it hears NOTIFYs, and after its
backend is terminated it reconnects and says so (`on_connect` again)."""

from __future__ import annotations

import asyncio

from jobqueue import db
from jobqueue.observability import logging as obslog
from jobqueue.process.listen import Listener
from jobqueue.process.service import run_forever
from tests import factories
from tests.support.wait import eventually


async def test_it_hears_events_and_reconnects_after_its_backend_is_killed(
    dsn: str, pool: db.Pool
) -> None:
    payloads: list[str] = []
    connects: list[int] = []
    listener = Listener(dsn=dsn, on_event=payloads.append,
                        on_connect=lambda: connects.append(1), component="test",
                        log=obslog.get_logger("test"), application_name="listener-test",
                        ping_seconds=0.2)
    task = asyncio.create_task(run_forever(listener, log=obslog.get_logger("test")))
    try:
        await eventually(lambda: connects, timeout=10, what="a first connection")
        t = await factories.tenant(pool)
        await factories.backlog(pool, t.id, 1)
        await eventually(lambda: any('"queued"' in p for p in payloads), timeout=10,
                         what="the NOTIFY of a queued job")
        killed = await pool.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'listener-test'")
        assert killed == 1
        await eventually(lambda: len(connects) == 2, timeout=10, what="a reconnection")
        assert listener.connections == 2
        payloads.clear()
        await factories.backlog(pool, t.id, 1)
        await eventually(lambda: payloads, timeout=10, what="an event after reconnecting")
        assert not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
