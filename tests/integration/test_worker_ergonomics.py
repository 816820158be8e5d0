"""ctx.snooze, per-handler retry policies, ctx.progress, sync-handler
cancellation and enqueue inside the caller's transaction, on real Postgres
with a real worker (in this process; tests/integration/test_ergonomics_live.py
runs them across processes)."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

import jobqueue
from jobqueue import db, errors
from jobqueue.db import jobs, leases
from jobqueue.models import JobStatus, LeaseToken, WorkerId
from jobqueue.worker.handlers import JobContext
from jobqueue.worker.retry import Retry
from tests import factories
from tests.support.wait import eventually
from tests.support.worker import fresh_queue, registry_with, running, settled, submit


async def test_snooze_requeues_later_without_burning_an_attempt(
    dsn: str, pool: db.Pool
) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    seen: list[tuple[int, float]] = []

    async def sleepy(ctx: JobContext, data: Any) -> Any:
        seen.append((ctx.attempt, time.monotonic()))
        if len(seen) == 1:
            ctx.snooze(1.5)
        return {"runs": len(seen)}

    [jid] = await submit(pool, t.id, 1, queue=q, type="sleepy", max_attempts=1)
    async with running(dsn, registry_with(sleepy=sleepy), queue=q, poll_seconds=0.2):
        [job] = await settled(pool, [jid], timeout=20)
    # max_attempts=1: had the snooze burned the attempt, the second run could not happen.
    assert job.status is JobStatus.SUCCEEDED and job.result == {"runs": 2}
    assert [a for a, _ in seen] == [1, 1] and job.attempt == 1
    assert seen[1][1] - seen[0][1] >= 1.4  # not before the snooze ran out
    assert job.errors == [] and job.last_error is None


async def test_snooze_is_fenced_by_the_lease_token(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await factories.submit(pool, t.id)
    [held] = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=1,
                                lease_seconds=30)
    await jobs.cancel(pool, job_id=held.job_id)
    assert await leases.snooze(pool, job_id=held.job_id, token=held.token, seconds=5) is None
    assert (await jobs.get(pool, job_id=held.job_id)).status is JobStatus.CANCELLED


async def test_a_handler_retry_policy_sets_attempts_and_backoff(
    dsn: str, pool: db.Pool
) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    failed_at: list[float] = []

    async def flaky(ctx: JobContext, data: Any) -> Any:
        failed_at.append(time.monotonic())
        assert ctx.max_attempts == 3  # the handler's, not the job's 10
        raise RuntimeError(f"attempt {ctx.attempt}")

    reg = registry_with()
    reg.add("flaky", flaky, retry=Retry(max_attempts=3, base_seconds=0.7, backoff="constant",
                                        jitter=False))
    [jid] = await submit(pool, t.id, 1, queue=q, type="flaky", max_attempts=10)
    # The worker's own backoff (an hour) would never retry within the test.
    async with running(dsn, reg, queue=q, poll_seconds=0.1, backoff_base_seconds=3600,
                       backoff_cap_seconds=3600):
        [job] = await settled(pool, [jid], timeout=20)
    assert job.status is JobStatus.DLQ and job.attempt == 3 and job.max_attempts == 3
    assert [e["attempt"] for e in job.errors] == [1, 2, 3]
    gaps = [b - a for a, b in itertools.pairwise(failed_at)]
    assert all(0.65 <= g < 3.0 for g in gaps), gaps  # constant 0.7 s, no jitter


async def test_progress_is_stored_latest_first_and_fenced(dsn: str, pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    release = threading.Event()
    reported = threading.Event()

    def steps(ctx: JobContext, data: Any) -> Any:  # sync: reports from a thread
        for i in range(1, 101):
            ctx.progress(i / 200, f"step {i}")
        reported.set()
        release.wait(10)
        ctx.progress(1.0, "done")
        return "ok"

    [jid] = await submit(pool, t.id, 1, queue=q, type="steps")
    async with running(dsn, registry_with(steps=steps), queue=q, progress_seconds=0.2):
        await asyncio.to_thread(reported.wait, 10)

        async def halfway() -> bool:
            return (await jobs.get(pool, job_id=jid)).progress == 0.5
        await eventually(halfway, timeout=5, what="the job halfway")
        job = await jobs.get(pool, job_id=jid)
        assert job.status is JobStatus.RUNNING and job.progress_note == "step 100"
        release.set()
        [job] = await settled(pool, [jid])
    # The last report before returning is stored before the ack.
    assert job.status is JobStatus.SUCCEEDED
    assert (job.progress, job.progress_note) == (1.0, "done")
    # A stale token writes nothing.
    stale = LeaseToken(uuid.uuid4())
    assert await leases.progress(pool, reports=[(jid, stale, 0.1, "late")]) == set()
    assert (await jobs.get(pool, job_id=jid)).progress == 1.0


@pytest.mark.parametrize("bad", [1.5, -0.1, float("nan"), True, "half"])
def test_progress_refuses_what_is_not_a_fraction(bad: Any) -> None:
    from jobqueue.worker import context

    with pytest.raises(ValueError, match="progress"):
        context.progress_report(bad, None)


async def test_a_sync_handler_sees_its_job_cancelled(dsn: str, pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    started, saw = threading.Event(), threading.Event()

    def polling(ctx: JobContext, data: Any) -> Any:
        started.set()
        deadline = time.monotonic() + 30
        while not ctx.cancelled and time.monotonic() < deadline:
            time.sleep(0.02)
        if ctx.cancelled:
            saw.set()
        return "dropped"

    [jid] = await submit(pool, t.id, 1, queue=q, type="polling")
    async with running(dsn, registry_with(polling=polling), queue=q, lease_seconds=60) as w:
        assert await asyncio.to_thread(started.wait, 10)
        await jobs.cancel(pool, job_id=jid)
        assert await asyncio.to_thread(saw.wait, 5)  # the NOTIFY, long before a heartbeat
        assert jid not in w.held
        await asyncio.sleep(0.5)
    job = await jobs.get(pool, job_id=jid)
    assert job.status is JobStatus.CANCELLED and job.result is None and job.attempt == 1


async def _raw(dsn: str) -> asyncpg.Connection:
    # A plain asyncpg connection, as an application has: no jobqueue codecs.
    return await asyncpg.connect(dsn)


async def test_enqueue_commits_and_rolls_back_with_the_callers_transaction(
    dsn: str, pool: db.Pool
) -> None:
    t = await factories.tenant(pool)
    conn = await _raw(dsn)
    try:
        await conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
        async with conn.transaction():
            await conn.execute("INSERT INTO orders VALUES (1)")
            kept = await jobqueue.enqueue(conn, tenant_id=t.id, type="receipt",
                                          data={"order": 1, "items": [1, 2]},
                                          idempotency_key="order-1", priority="high")
            # Not visible outside the transaction until it commits.
            with pytest.raises(errors.JobNotFound):
                await jobs.get(pool, job_id=kept.job_id)
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await conn.execute("INSERT INTO orders VALUES (2)")
                gone = await jobqueue.enqueue(conn, tenant_id=t.id, type="receipt",
                                              data={"order": 2})
                raise RuntimeError("the application fails after enqueueing")
    finally:
        await conn.close()
    job = await jobs.get(pool, job_id=kept.job_id)
    assert job.data == {"order": 1, "items": [1, 2]} and job.priority.name == "HIGH"
    assert job.status is JobStatus.QUEUED and job.max_attempts == 5 and not kept.replayed
    with pytest.raises(errors.JobNotFound):
        await jobs.get(pool, job_id=gone.job_id)


async def test_enqueue_is_idempotent_and_checks_its_input(dsn: str, pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    conn = await _raw(dsn)
    try:
        first = await jobqueue.enqueue(conn, tenant_id=t.id, type="x", data=[1],
                                       idempotency_key="k", run_at=None)
        again = await jobqueue.enqueue(conn, tenant_id=t.id, type="x", data=[1],
                                       idempotency_key="k")
        assert again.job_id == first.job_id and again.replayed
        with pytest.raises(errors.IdempotencyConflict):
            await jobqueue.enqueue(conn, tenant_id=t.id, type="x", data=[2], idempotency_key="k")
        for bad in ({"type": "bad type"}, {"type": "x", "queue": ""},
                    {"type": "x", "priority": "urgent"}, {"type": "x", "max_attempts": 0}):
            with pytest.raises(errors.InvalidInput):
                await jobqueue.enqueue(conn, tenant_id=t.id, **bad)
        with pytest.raises(errors.TenantNotFound):
            await jobqueue.enqueue(conn, tenant_id="no-such-tenant", type="x")
        later = await jobqueue.enqueue(
            conn, tenant_id=t.id, type="x",
            run_at=(await conn.fetchval("SELECT now()")) + timedelta(hours=1),
        )
    finally:
        await conn.close()
    page = await jobs.list_jobs(pool, tenant_id=t.id)
    assert page.total == 2  # nothing from the refused calls
    soon = datetime.now(UTC) + timedelta(minutes=30)
    assert (await jobs.get(pool, job_id=later.job_id)).scheduled_at > soon
