"""Queue-depth gauges from a real database, refreshed by the periodic task."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from jobqueue import db
from jobqueue.db import leases, stats
from jobqueue.models import WorkerId
from jobqueue.observability import logging as obslog
from jobqueue.observability import metrics
from jobqueue.process.depth import DepthRefresh
from jobqueue.process.service import run_forever
from tests import factories
from tests.support.wait import eventually


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = metrics.render()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def depth(tenant: str, queue: str = "default") -> float | None:
    key = ("job_queue_depth", (("queue", queue), ("tenant_id", tenant)))
    return scrape().get(key)


async def test_depth_follows_the_database_and_idle_queues_vanish(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await factories.backlog(pool, t.id, 5)
    metrics.refresh_depth(await stats.depth(pool))
    assert depth(t.id) == 5
    age = scrape()[("job_queue_oldest_ready_age_seconds",
                    (("queue", "default"), ("tenant_id", t.id)))]
    assert age >= 0

    held = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=3,
                              lease_seconds=30)
    metrics.refresh_depth(await stats.depth(pool))
    assert depth(t.id) == 2
    assert scrape()[("job_queue_jobs", (("queue", "default"), ("status", "running"),
                                        ("tenant_id", t.id)))] == 3

    await leases.ack(pool, done=[(lease.job_id, lease.token, None) for lease in held])
    rest = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=10,
                              lease_seconds=30)
    await leases.ack(pool, done=[(lease.job_id, lease.token, None) for lease in rest])
    metrics.refresh_depth(await stats.depth(pool))
    assert depth(t.id) is None  # nothing unfinished: the series is gone, not stuck at 5


async def test_refresh_service_counts_database_errors_and_keeps_running(dsn: str) -> None:
    conn = await db.connect(dsn)
    await conn.close()  # every query on it now fails like a lost database
    key = ("database_errors_total", (("component", "depth-test"),))
    before = scrape().get(key, 0.0)
    refresh = DepthRefresh(conn=conn, component="depth-test", interval=0.01)
    refresh.retry_base_seconds = refresh.retry_cap_seconds = 0.01
    task = asyncio.create_task(run_forever(refresh, log=obslog.get_logger("test")))
    try:
        await eventually(lambda: scrape().get(key, 0.0) >= before + 2, timeout=2)
        assert not task.done()
    finally:
        task.cancel()


async def test_one_pass_sets_the_gauges_and_feeds_the_snapshot(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await factories.backlog(pool, t.id, 3)
    seen: list[int] = []
    refresh = DepthRefresh(conn=pool, component="depth-test", timeout=5,
                           on_rows=lambda rows: seen.append(len(rows)))
    assert await refresh.run_once() == seen[0] >= 1
    assert depth(t.id) == 3
    refresh.standby()  # no longer leader: another process exports them now
    assert depth(t.id) is None
