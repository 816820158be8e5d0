"""Tenants, keys, rate limits, leader rows, stats and pruning on real Postgres."""

from __future__ import annotations

import asyncio

import pytest

from jobqueue import apikeys, db, errors
from jobqueue.db import history, jobs, leaders, leases, ratelimit, stats, tenants
from jobqueue.models import JobStatus, TenantId, TenantQuotas, WorkerId
from tests import factories


async def test_upsert_updates_quotas_and_disable_keeps_jobs(pool: db.Pool) -> None:
    t = await tenants.upsert(pool, tenant_id=TenantId("acme"), quotas=TenantQuotas(weight=2))
    job = await factories.submit(pool, t.id)
    t2 = await tenants.upsert(
        pool, tenant_id=t.id, quotas=TenantQuotas(weight=5, max_concurrent=7, enabled=False)
    )
    assert (t2.weight, t2.max_concurrent, t2.enabled) == (5, 7, False)
    assert t2.created_at == t.created_at
    assert (await jobs.get(pool, job_id=job.id)).status is JobStatus.QUEUED
    updated = await tenants.update(pool, tenant_id=t.id, enabled=True)
    assert updated.enabled and updated.weight == 5


async def test_bad_tenant_names_and_quotas_are_refused(pool: db.Pool) -> None:
    with pytest.raises(errors.InvalidInput):
        await tenants.upsert(pool, tenant_id=TenantId("Not_A_Dns_Label"), quotas=TenantQuotas())
    with pytest.raises(errors.InvalidInput):
        await tenants.upsert(pool, tenant_id=TenantId("ok"), quotas=TenantQuotas(weight=0))
    assert await tenants.list_tenants(pool) == []
    with pytest.raises(errors.TenantNotFound):
        await tenants.update(pool, tenant_id=TenantId("ghost"), weight=2)


async def test_api_keys_are_stored_as_digests_only(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    key = apikeys.generate()
    await tenants.add_api_key(pool, tenant_id=t.id, key_hash=apikeys.digest(key))
    creds = await tenants.credentials(pool, tenant_id=t.id)
    assert creds.enabled
    assert apikeys.matches(key, creds.key_hashes)
    assert not apikeys.matches(apikeys.generate(), creds.key_hashes)
    stored = await pool.fetchval("SELECT string_agg(key_hash, ',') FROM api_keys")
    assert key not in stored
    assert await tenants.revoke_api_keys(pool, tenant_id=t.id) == 1
    assert (await tenants.credentials(pool, tenant_id=t.id)).key_hashes == []


async def test_rate_limit_admits_the_burst_then_refuses_with_a_retry_time(
    pool: db.Pool,
) -> None:
    t = await factories.tenant(pool, rate_per_minute=60, rate_burst=10)
    decisions = [await ratelimit.take(pool, tenant_id=t.id) for _ in range(12)]
    assert [d.allowed for d in decisions] == [True] * 10 + [False] * 2
    assert 0 < decisions[-1].retry_after_seconds <= 1.0
    with pytest.raises(errors.TenantNotFound):
        await ratelimit.take(pool, tenant_id=TenantId("ghost"))


async def test_rate_limit_is_exact_under_concurrency(pool: db.Pool) -> None:
    t = await factories.tenant(pool, rate_per_minute=6, rate_burst=20)
    decisions = await asyncio.gather(
        *(ratelimit.take(pool, tenant_id=t.id) for _ in range(60))
    )
    assert sum(d.allowed for d in decisions) == 20


async def test_rate_limit_commits_asynchronously_in_its_own_transaction_only(
    pool: db.Pool,
) -> None:
    # Its row is every request's: a WAL flush per take serialized a tenant's
    # requests behind the disk. The setting must not outlive the take.
    t = await factories.tenant(pool, rate_per_minute=600, rate_burst=10)
    async with pool.acquire() as conn:
        # The test server runs with it off (no fsync); this session with it on.
        await conn.execute("SET synchronous_commit = on")
        try:
            async with conn.transaction():
                assert (await ratelimit.take(conn, tenant_id=t.id)).allowed
                assert await conn.fetchval("SHOW synchronous_commit") == "off"
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
            assert (await ratelimit.take(conn, tenant_id=t.id)).allowed
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
        finally:
            await conn.execute("RESET synchronous_commit")


async def test_one_leader_at_a_time_and_takeover_after_expiry(pool: db.Pool) -> None:
    a = await leaders.acquire_or_renew(pool, name="reaper", candidate="a", lease_seconds=30)
    b = await leaders.acquire_or_renew(pool, name="reaper", candidate="b", lease_seconds=30)
    assert a.holder == "a" and b.holder == "a"
    renewed = await leaders.acquire_or_renew(pool, name="reaper", candidate="a", lease_seconds=30)
    assert renewed.expires_at >= a.expires_at
    assert await leaders.release(pool, name="reaper", candidate="a")
    taken = await leaders.acquire_or_renew(pool, name="reaper", candidate="b", lease_seconds=30)
    assert taken.holder == "b" and taken.transitions == 1


async def test_racing_first_claims_all_name_the_one_leader(pool: db.Pool) -> None:
    """Candidates starting together on a fresh lease name: the losers' INSERT
    waits for the winner's, then finds a row its snapshot cannot see. Each
    must still get an answer naming the winner (a reaper once crashed here)."""
    for round_ in range(20):
        name = f"race-{round_}"
        got = await asyncio.gather(
            *(
                leaders.acquire_or_renew(pool, name=name, candidate=f"c{i}", lease_seconds=30)
                for i in range(8)
            )
        )
        holders = {g.holder for g in got}
        assert len(holders) == 1, holders
        assert {g.transitions for g in got} == {0}


async def test_depth_counts_by_status_and_reports_the_oldest_ready_age(pool: db.Pool) -> None:
    a = await factories.tenant(pool)
    b = await factories.tenant(pool)
    await factories.backlog(pool, a.id, 5)
    await factories.backlog(pool, b.id, 2, queue="other")
    await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=2, lease_seconds=30)
    rows = await stats.depth(pool, tenant_id=a.id)
    by_status = {r.status: r for r in rows}
    assert by_status[JobStatus.QUEUED].jobs == 3
    assert by_status[JobStatus.RUNNING].jobs == 2  # a lease starts its jobs
    assert by_status[JobStatus.QUEUED].oldest_ready_age_seconds is not None
    assert {r.tenant_id for r in rows} == {a.id}
    assert {r.queue for r in await stats.depth(pool)} == {"default", "other"}


async def test_archive_moves_only_old_finished_jobs_in_batches(pool: db.Pool) -> None:
    t = await factories.tenant(pool, max_concurrent=1000)
    await factories.backlog(pool, t.id, 30)
    held = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=25,
                              lease_seconds=30)
    await leases.ack(pool, done=[(h.job_id, h.token, None) for h in held])
    await pool.execute("UPDATE jobs SET finished_at = now() - interval '2 days'"
                       " WHERE status = 'succeeded'")  # test-only: age the history
    await history.ensure_partitions(pool, retention_seconds=7 * 86400)
    first = await history.archive(pool, after_seconds=86400, retention_seconds=7 * 86400,
                                  limit=10)
    rest = await history.archive(pool, after_seconds=86400, retention_seconds=7 * 86400,
                                 limit=100)
    assert (first.moved, first.kept, rest.moved, rest.kept) == (10, 10, 15, 15)
    assert await pool.fetchval("SELECT count(*) FROM jobs WHERE tenant_id = $1", t.id) == 5
    listed = await jobs.list_jobs(pool, tenant_id=t.id)
    assert listed.total == 30  # the listing reads both
    assert sum(j.status is JobStatus.QUEUED for j in listed.jobs) == 5

