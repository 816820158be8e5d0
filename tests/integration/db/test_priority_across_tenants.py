"""Invariant 15 (priority across tenants) on real PostgreSQL: classes first, the fair
share within a class, and aging that bounds how long a class can wait."""

from __future__ import annotations

import collections

from jobqueue import db
from jobqueue.db import leases, limits
from jobqueue.limits import LimitSpec
from jobqueue.models import Lease, Priority, TenantId, WorkerId
from tests import factories

W = WorkerId("w")


async def _lease(pool: db.Pool, n: int, queue: str = "default") -> list[Lease]:
    return await leases.lease(pool, queue=queue, worker_id=W, limit=n, lease_seconds=60)


def _by(held: list[Lease]) -> collections.Counter[tuple[str, str]]:
    return collections.Counter((h.job.tenant_id, h.job.priority.name.lower()) for h in held)


async def _two(pool: db.Pool) -> tuple[TenantId, TenantId]:
    a = await factories.tenant(pool, "a", max_concurrent=1000)
    b = await factories.tenant(pool, "b", max_concurrent=1000)
    return a.id, b.id


async def _wait(pool: db.Pool, tenant: TenantId, minutes: int) -> None:
    """Make a tenant's queued jobs have waited `minutes` on the database clock."""
    await pool.execute(
        "UPDATE jobs SET scheduled_at = now() - make_interval(mins => $2), created_at ="
        " now() - make_interval(mins => $2) WHERE tenant_id = $1 AND status = 'queued'",
        tenant, minutes)


async def test_another_tenants_critical_jobs_go_before_a_tenants_low_ones(
    pool: db.Pool,
) -> None:
    a, b = await _two(pool)
    await factories.backlog(pool, a, 10, priority="low")  # older
    await factories.backlog(pool, b, 10, priority="critical")

    assert _by(await _lease(pool, 6)) == {("b", "critical"): 6}


async def test_within_one_class_the_fair_share_decides(pool: db.Pool) -> None:
    a, b = await _two(pool)
    await factories.backlog(pool, a, 10, priority="high")
    await factories.backlog(pool, b, 10, priority="high")
    await factories.backlog(pool, b, 10, priority="normal")

    assert _by(await _lease(pool, 10)) == {("a", "high"): 5, ("b", "high"): 5}
    # Every high job before b's normal ones, though b is behind in its share.
    assert _by(await _lease(pool, 12)) == {("a", "high"): 5, ("b", "high"): 5,
                                           ("b", "normal"): 2}


async def test_a_batch_mixes_classes_by_job_not_by_tenant(pool: db.Pool) -> None:
    a, b = await _two(pool)
    await factories.submit(pool, a, priority="critical")
    await factories.backlog(pool, a, 10, priority="low")
    await factories.backlog(pool, b, 10, priority="high")

    # a's one critical job, then b's high ones: not a's low ones, although
    # a would be owed half the batch by weight alone.
    assert _by(await _lease(pool, 6)) == {("a", "critical"): 1, ("b", "high"): 5}


async def test_waiting_raises_a_class_so_a_flood_of_critical_starves_no_one(
    pool: db.Pool,
) -> None:
    a, b = await _two(pool)
    await factories.backlog(pool, a, 100, priority="critical")
    await factories.backlog(pool, b, 10, priority="low")

    assert _by(await _lease(pool, 4)) == {("a", "critical"): 4}
    await _wait(pool, b, 2)  # low + 2: high, still below critical
    assert _by(await _lease(pool, 4)) == {("a", "critical"): 4}
    await _wait(pool, b, 3)  # low + 3: critical, equal to a's and behind in tags
    got = _by(await _lease(pool, 10))
    assert got[("b", "low")] >= 5
    assert got[("a", "critical")] + got[("b", "low")] == 10


async def test_one_tenants_own_jobs_keep_priority_then_fifo(pool: db.Pool) -> None:
    a, _ = await _two(pool)
    order = ["low", "critical", "normal", "critical", "high"]
    made = [await factories.submit(pool, a, priority=p) for p in order]
    await _wait(pool, a, 10)  # all critical by age: their own order stays
    got = await _lease(pool, 5)
    expected = sorted(made, key=lambda j: (-Priority(j.priority), j.seq))
    assert [h.job_id for h in got] == [j.id for j in expected]


async def test_classes_hold_in_a_queue_with_limits(pool: db.Pool) -> None:
    a, b = await _two(pool)
    await limits.put(pool, queue="limited", spec=LimitSpec(name="loose", max_concurrent=1000))
    await factories.submit(pool, a, queue="limited", priority="critical")
    await factories.backlog(pool, a, 10, queue="limited", priority="low")
    await factories.backlog(pool, b, 10, queue="limited", priority="high")

    assert _by(await _lease(pool, 6, "limited")) == {("a", "critical"): 1, ("b", "high"): 5}
