"""Invariants 3, 4, 5 and 7 on real Postgres: fencing, database time,
attempts that count crashes, priority and FIFO."""

from __future__ import annotations

import asyncio
import uuid

from jobqueue import db
from jobqueue.db import jobs, leases, maintenance
from jobqueue.models import JobId, JobStatus, Lease, LeaseToken, Priority, WorkerId
from tests import factories

W1 = WorkerId("w1")
W2 = WorkerId("w2")


async def _one_lease(pool: db.Pool, worker: WorkerId = W1, lease_seconds: float = 30) -> Lease:
    got = await leases.lease(
        pool, queue="default", worker_id=worker, limit=1, lease_seconds=lease_seconds
    )
    assert len(got) == 1
    return got[0]


async def _expire(pool: db.Pool, job_id: JobId | None = None) -> None:
    """Age leases past their expiry on the database clock instead of sleeping.
    Test-only SQL: production code never moves a lease back in time."""
    await pool.execute(
        "UPDATE jobs SET lease_expires_at = now() - interval '1 second'"
        " WHERE lease_expires_at IS NOT NULL AND ($1::uuid IS NULL OR id = $1)",
        job_id,
    )


async def _stolen(pool: db.Pool) -> tuple[Lease, Lease]:
    """A lease that expired and was re-leased by another worker: (stale, current)."""
    t = await factories.tenant(pool)
    await factories.submit(pool, t.id)
    stale = await _one_lease(pool, W1)
    await leases.start(pool, held=[(stale.job_id, stale.token)])
    await _expire(pool, stale.job_id)
    reaped = await maintenance.reap_expired(pool)
    assert [r.job_id for r in reaped] == [stale.job_id]
    current = await _one_lease(pool, W2)
    assert current.job_id == stale.job_id and current.token != stale.token
    return stale, current


async def _snapshot(pool: db.Pool, job_id: JobId) -> tuple[object, ...]:
    j = await jobs.get(pool, job_id=job_id)
    return (j.status, j.attempt, j.lease_token, j.lease_owner, j.lease_expires_at, j.result,
            j.last_error, j.scheduled_at)


async def test_stale_start_changes_nothing(pool: db.Pool) -> None:
    stale, current = await _stolen(pool)
    before = await _snapshot(pool, current.job_id)
    assert await leases.start(pool, held=[(stale.job_id, stale.token)]) == set()
    assert await _snapshot(pool, current.job_id) == before


async def test_stale_heartbeat_changes_nothing(pool: db.Pool) -> None:
    stale, current = await _stolen(pool)
    before = await _snapshot(pool, current.job_id)
    held = await leases.heartbeat(pool, held=[(stale.job_id, stale.token)], lease_seconds=600)
    assert held == set()
    assert await _snapshot(pool, current.job_id) == before


async def test_stale_ack_changes_nothing(pool: db.Pool) -> None:
    stale, current = await _stolen(pool)
    before = await _snapshot(pool, current.job_id)
    assert await leases.ack(pool, done=[(stale.job_id, stale.token, {"late": True})]) == []
    assert await _snapshot(pool, current.job_id) == before
    done = await leases.ack(pool, done=[(current.job_id, current.token, {"ok": True})])
    assert [d.status for d in done] == [JobStatus.SUCCEEDED]


async def test_stale_fail_changes_nothing(pool: db.Pool) -> None:
    stale, current = await _stolen(pool)
    before = await _snapshot(pool, current.job_id)
    out = await leases.fail(
        pool, job_id=stale.job_id, token=stale.token, error="boom", retry_in_seconds=0
    )
    assert out is None
    assert await _snapshot(pool, current.job_id) == before


async def test_stale_release_changes_nothing(pool: db.Pool) -> None:
    stale, current = await _stolen(pool)
    before = await _snapshot(pool, current.job_id)
    assert await leases.release(pool, held=[(stale.job_id, stale.token)]) == set()
    assert await _snapshot(pool, current.job_id) == before


async def test_random_token_is_refused_everywhere(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await factories.submit(pool, t.id)
    held = await _one_lease(pool)
    forged = LeaseToken(uuid.uuid4())
    before = await _snapshot(pool, held.job_id)
    assert await leases.ack(pool, done=[(held.job_id, forged, None)]) == []
    assert await leases.release(pool, held=[(held.job_id, forged)]) == set()
    assert await _snapshot(pool, held.job_id) == before


async def test_reaper_does_not_overwrite_a_job_acked_after_expiry(pool: db.Pool) -> None:
    """River #1302: a rescuer must compare-and-set, not overwrite."""
    t = await factories.tenant(pool)
    await factories.submit(pool, t.id)
    held = await _one_lease(pool)
    await leases.ack(pool, done=[(held.job_id, held.token, {"ok": 1})])
    await _expire(pool, held.job_id)  # even with a stale expiry in the row
    assert await maintenance.reap_expired(pool) == []
    assert (await jobs.get(pool, job_id=held.job_id)).status is JobStatus.SUCCEEDED


async def test_lease_expiry_and_backoff_use_the_database_clock(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await factories.submit(pool, t.id)
    held = await _one_lease(pool, lease_seconds=42)
    j = await jobs.get(pool, job_id=held.job_id)
    assert j.leased_at is not None and j.lease_expires_at is not None
    assert (j.lease_expires_at - j.leased_at).total_seconds() == 42
    out = await leases.fail(
        pool, job_id=held.job_id, token=held.token, error="x", retry_in_seconds=90
    )
    assert out is not None and out.status is JobStatus.QUEUED
    j = await jobs.get(pool, job_id=held.job_id)
    assert (j.scheduled_at - j.updated_at).total_seconds() == 90
    # Not ready until the database clock reaches it.
    assert await leases.lease(
        pool, queue="default", worker_id=W1, limit=10, lease_seconds=30
    ) == []


async def test_expired_leases_count_attempts_and_end_in_the_dlq(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    job = await factories.submit(pool, t.id, max_attempts=3)
    for attempt in (1, 2, 3):
        held = await _one_lease(pool)
        assert held.job.attempt == attempt
        await _expire(pool, job.id)
        [reaped] = await maintenance.reap_expired(pool)
        assert reaped.status is (JobStatus.DLQ if attempt == 3 else JobStatus.QUEUED)
    final = await jobs.get(pool, job_id=job.id)
    assert final.status is JobStatus.DLQ
    assert final.attempt == 3
    assert len(final.errors) == 3 and "lease expired" in (final.last_error or "")


async def test_release_does_not_burn_an_attempt(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    job = await factories.submit(pool, t.id, max_attempts=1)
    held = await _one_lease(pool)
    assert await leases.release(pool, held=[(held.job_id, held.token)]) == {job.id}
    again = await _one_lease(pool)
    assert again.job.attempt == 1


async def test_failures_retry_then_go_to_the_dlq_and_retry_brings_them_back(
    pool: db.Pool,
) -> None:
    t = await factories.tenant(pool)
    job = await factories.submit(pool, t.id, max_attempts=2)
    held = await _one_lease(pool)
    first = await leases.fail(pool, job_id=job.id, token=held.token, error="e1",
                              retry_in_seconds=0)
    assert first is not None and first.status is JobStatus.QUEUED
    held = await _one_lease(pool)
    second = await leases.fail(pool, job_id=job.id, token=held.token, error="e2",
                               retry_in_seconds=0)
    assert second is not None and second.status is JobStatus.DLQ
    back = await jobs.retry(pool, job_id=job.id, reset_attempts=True)
    assert back.status is JobStatus.QUEUED and back.attempt == 0
    assert [e["error"] for e in back.errors] == ["e1", "e2"]


async def test_cancel_takes_the_lease_away(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    job = await factories.submit(pool, t.id)
    held = await _one_lease(pool)
    cancelled = await jobs.cancel(pool, job_id=job.id, tenant_id=t.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert await leases.ack(pool, done=[(held.job_id, held.token, None)]) == []
    assert (await jobs.get(pool, job_id=job.id)).status is JobStatus.CANCELLED


async def test_priority_then_fifo(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    order = ["low", "normal", "critical", "high", "normal", "critical", "low", "high"]
    submitted = [await factories.submit(pool, t.id, priority=p) for p in order]
    got: list[Lease] = []
    for _ in order:
        got += await leases.lease(pool, queue="default", worker_id=W1, limit=1, lease_seconds=30)
    expected = sorted(submitted, key=lambda j: (-Priority(j.priority), j.seq))
    assert [g.job_id for g in got] == [j.id for j in expected]


async def test_scheduled_jobs_wait_for_their_time(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    later = await pool.fetchval("SELECT now() + interval '1 hour'")
    await factories.submit(pool, t.id, run_at=later)
    now_job = await factories.submit(pool, t.id)
    got = await leases.lease(pool, queue="default", worker_id=W1, limit=10, lease_seconds=30)
    assert [g.job_id for g in got] == [now_job.id]


async def test_leases_of_one_queue_ignore_other_queues(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await factories.submit(pool, t.id, queue="emails")
    got = await leases.lease(pool, queue="default", worker_id=W1, limit=10, lease_seconds=30)
    assert got == []
    got = await leases.lease(pool, queue="emails", worker_id=W1, limit=10, lease_seconds=30)
    assert len(got) == 1


async def test_disabled_tenants_are_not_served(pool: db.Pool) -> None:
    t = await factories.tenant(pool, enabled=False)
    await factories.submit(pool, t.id)
    assert await leases.lease(
        pool, queue="default", worker_id=W1, limit=10, lease_seconds=30
    ) == []


async def test_concurrent_acks_and_reaps_leave_one_outcome(pool: db.Pool) -> None:
    t = await factories.tenant(pool, max_concurrent=1000)
    await factories.backlog(pool, t.id, 300)
    held = await leases.lease(pool, queue="default", worker_id=W1, limit=300, lease_seconds=30)
    await _expire(pool)
    acked, reaped = await asyncio.gather(
        leases.ack(pool, done=[(h.job_id, h.token, None) for h in held]),
        maintenance.reap_expired(pool, limit=1000),
    )
    assert len(acked) + len(reaped) == 300
    assert not ({a.job_id for a in acked} & {r.job_id for r in reaped})
