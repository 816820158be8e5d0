"""A lease over many backlogged tenants: it locks only what it takes, serves
every tenant in turn although it looks at no more than `limit` of them, and
never makes a submission wait."""

from __future__ import annotations

import asyncio
import collections

from jobqueue import db
from jobqueue.db import leases, tenants
from jobqueue.models import TenantId, TenantQuotas, WorkerId
from tests import factories
from tests.integration.db import plans


async def _locked(dsn: str, table: str, mode: str) -> int:
    """Rows of `table` that another transaction holds in a lock that
    conflicts with `mode`, right now."""
    conn = await db.connect(dsn)
    try:
        total = await conn.fetchval(f"SELECT count(*) FROM {table}")
        free = await conn.fetchval(
            f"SELECT count(*) FROM (SELECT 1 FROM {table} FOR {mode} SKIP LOCKED) q"
        )
        return int(total - free)
    finally:
        await conn.close()


async def test_a_lease_locks_only_the_jobs_it_takes_and_at_most_limit_tenants(
    dsn: str, pool: db.Pool
) -> None:
    owners = [await factories.tenant(pool, max_concurrent=1000) for _ in range(12)]
    for t in owners:
        await factories.backlog(pool, t.id, 40)
    conn = await db.connect(dsn)
    try:
        async with conn.transaction():  # hold the lease's locks while we look
            got = await leases.lease(conn, queue="default", worker_id=WorkerId("w"), limit=5,
                                     lease_seconds=60)
            assert len(got) == 5
            jobs_locked = await _locked(dsn, "jobs", "UPDATE")
            tenants_locked = await _locked(dsn, "tenants", "KEY SHARE")
            counters_locked = await _locked(dsn, "tenant_taken", "UPDATE")
    finally:
        await conn.close()
    assert jobs_locked == 5  # the five it leased; every tenant had 40 to offer
    assert tenants_locked == 0  # submissions' foreign keys never wait on a lease
    assert counters_locked == 5  # one candidate per slot at most, not all twelve


async def test_more_tenants_than_slots_are_all_served_in_turn(pool: db.Pool) -> None:
    owners = [await factories.tenant(pool, max_concurrent=1000) for _ in range(20)]
    for t in owners:
        await factories.backlog(pool, t.id, 10)
    served: collections.Counter[TenantId] = collections.Counter()
    for _ in range(8):  # 8 rounds of 5 slots: every tenant exactly twice
        batch = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=5,
                                   lease_seconds=60)
        assert len(batch) == 5
        served.update(h.job.tenant_id for h in batch)
        await leases.ack(pool, done=[(h.job_id, h.token, None) for h in batch])
    assert set(served) == {t.id for t in owners}
    assert set(served.values()) == {2}


async def test_a_tenant_with_few_jobs_leaves_its_slots_to_the_others(pool: db.Pool) -> None:
    sparse = [await factories.tenant(pool, max_concurrent=1000) for _ in range(3)]
    deep = await factories.tenant(pool, max_concurrent=1000)
    for t in sparse:
        await factories.backlog(pool, t.id, 1)
    await factories.backlog(pool, deep.id, 100)
    batch = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=20,
                               lease_seconds=60)
    by_tenant = collections.Counter(h.job.tenant_id for h in batch)
    assert len(batch) == 20  # a full batch although three tenants had one job each
    assert by_tenant[deep.id] == 17
    assert all(by_tenant[t.id] == 1 for t in sparse)


async def test_saturated_tenants_do_not_hide_the_others(pool: db.Pool) -> None:
    """Tenants at max_concurrent keep the smallest start tags (they are not
    served, so their tags stand still); the lease must look past them."""
    full = [await factories.tenant(pool, max_concurrent=1) for _ in range(6)]
    other = await factories.tenant(pool, max_concurrent=1000)
    for t in full:
        await factories.backlog(pool, t.id, 5)
    first = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=6,
                               lease_seconds=60)
    assert {h.job.tenant_id for h in first} == {t.id for t in full}  # each now at its cap
    await factories.backlog(pool, other.id, 5)
    nxt = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=3,
                             lease_seconds=60)
    assert [h.job.tenant_id for h in nxt] == [other.id] * 3


async def test_submissions_do_not_wait_for_a_lease_in_progress(dsn: str, pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await factories.backlog(pool, t.id, 3)
    conn = await db.connect(dsn)
    try:
        async with conn.transaction():
            await leases.lease(conn, queue="default", worker_id=WorkerId("w"), limit=1,
                               lease_seconds=60)
            # The tenant row is locked by the open lease; a submit must not queue behind it.
            await asyncio.wait_for(factories.submit(pool, t.id), timeout=5)
    finally:
        await conn.close()


async def test_idle_tenants_are_not_read_on_the_lease_path(dsn: str, pool: db.Pool) -> None:
    """Thousands of tenants with nothing queued must not make a lease dearer:
    candidates come from the ready index, not from a scan of tenants."""
    await pool.execute(
        "INSERT INTO tenants (id) SELECT 'idle-' || g FROM generate_series(1, 3000) g"
    )
    busy = await factories.tenant(pool)
    await factories.backlog(pool, busy.id, 20)
    await pool.execute("ANALYZE")
    found = await plans.lease_plans(dsn, limit=5, rounds=3)
    read = sum(  # rows a scan returned or filtered away
        int((n["Actual Rows"] + n.get("Rows Removed by Filter", 0)) * n.get("Actual Loops", 1))
        for p in found
        for n in plans.nodes(p)
        if n.get("Relation Name") == "tenants"
    )
    assert read <= 3 * 4, f"tenant rows read by 3 leases: {read}"


async def test_a_tenant_disabled_while_a_lease_waits_on_it_gets_nothing(
    dsn: str, pool: db.Pool
) -> None:
    t = await factories.tenant(pool)
    await factories.backlog(pool, t.id, 3)
    conn = await db.connect(dsn)
    try:
        disabling = conn.transaction()
        await disabling.start()
        await tenants.upsert(conn, tenant_id=t.id, quotas=TenantQuotas(enabled=False))
        lease = asyncio.create_task(
            leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=3,
                         lease_seconds=60)
        )
        await asyncio.sleep(0.5)
        assert not lease.done()  # it chose the tenant and waits for its row
        await disabling.commit()
        assert await asyncio.wait_for(lease, 5) == []
    finally:
        await conn.close()
