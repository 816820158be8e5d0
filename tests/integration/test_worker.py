"""The worker against real Postgres, in this process: leasing, outcomes,
backoff, timeouts, lost leases, wake-up by NOTIFY and graceful stop."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from jobqueue import db
from jobqueue.db import jobs
from jobqueue.models import JobId, JobStatus
from jobqueue.settings import DatabaseSettings, WorkerSettings
from jobqueue.worker.handlers import JobContext
from jobqueue.worker.worker import Worker
from tests import factories
from tests.support.wait import eventually
from tests.support.worker import counter, fresh_queue, registry_with, running, settled, submit


async def test_jobs_run_and_are_acked_with_their_results(dsn: str, pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    ids = await submit(pool, t.id, 60, queue=q)
    reg = registry_with()
    async with running(dsn, reg, queue=q, concurrency=8):
        done = await settled(pool, ids)
    assert {j.status for j in done} == {JobStatus.SUCCEEDED}
    assert [j.result for j in done] == [{"i": i} for i in range(60)]
    assert {j.attempt for j in done} == {1}
    assert all(j.started_at is not None and j.lease_token is None for j in done)
    assert counter("jobs_completed_total", tenant_id=t.id, status="succeeded") >= 60


async def test_unknown_job_type_goes_to_the_dlq_at_once(dsn: str, pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    [jid] = await submit(pool, t.id, 1, queue=q, type="resize-image", max_attempts=5)
    async with running(dsn, registry_with(), queue=q):
        [job] = await settled(pool, [jid])
    assert job.status is JobStatus.DLQ
    assert job.attempt == 1
    assert job.last_error is not None
    assert "no handler for job type 'resize-image'" in job.last_error


async def test_failures_retry_with_backoff_then_dead_letter(dsn: str, pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    calls: list[int] = []

    async def flaky(ctx: JobContext, data: Any) -> Any:
        calls.append(ctx.attempt)
        raise ValueError(f"attempt {ctx.attempt} failed")

    [jid] = await submit(pool, t.id, 1, queue=q, type="flaky", max_attempts=3)
    async with running(dsn, registry_with(flaky=flaky), queue=q, poll_seconds=0.1,
                       backoff_base_seconds=0.05, backoff_cap_seconds=0.2):
        [job] = await settled(pool, [jid])
    assert calls == [1, 2, 3]
    assert job.status is JobStatus.DLQ
    assert [e["attempt"] for e in job.errors] == [1, 2, 3]
    assert job.last_error is not None and job.last_error.startswith("ValueError: attempt 3")


async def test_a_retry_waits_for_its_backoff_on_the_database_clock(
    dsn: str, pool: db.Pool
) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()

    async def once(ctx: JobContext, data: Any) -> Any:
        if ctx.attempt == 1:
            raise RuntimeError("first try fails")
        return "ok"

    [jid] = await submit(pool, t.id, 1, queue=q, type="once")
    # base = cap = 1.5 s: the delay is uniform in [0, 1.5 s).
    async with running(dsn, registry_with(once=once), queue=q, poll_seconds=0.05,
                       backoff_base_seconds=1.5, backoff_cap_seconds=1.5):
        await eventually(lambda: _status_is(pool, jid, JobStatus.QUEUED), timeout=15,
                         what="the job queued again")
        queued = await jobs.get(pool, job_id=jid)
        [job] = await settled(pool, [jid])
    assert job.status is JobStatus.SUCCEEDED and job.attempt == 2
    delay = (queued.scheduled_at - queued.updated_at).total_seconds()
    assert 0.0 <= delay < 1.5
    assert job.started_at is not None and job.started_at >= queued.scheduled_at


async def _status_is(pool: db.Pool, jid: JobId, status: JobStatus) -> bool:
    return (await jobs.get(pool, job_id=jid)).status is status


async def test_timeout_fails_the_attempt(dsn: str, pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    [jid] = await submit(pool, t.id, 1, queue=q, type="sleep", data={"seconds": 60},
                         timeout_seconds=1, max_attempts=1)
    started = time.monotonic()
    async with running(dsn, registry_with(), queue=q):
        [job] = await settled(pool, [jid])
    assert time.monotonic() - started < 10
    assert job.status is JobStatus.DLQ
    assert job.last_error == "timeout: the handler ran longer than 1 s"


async def test_lost_lease_cancels_the_handler_and_drops_its_result(
    dsn: str, pool: db.Pool
) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def long(ctx: JobContext, data: Any) -> Any:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    [jid] = await submit(pool, t.id, 1, queue=q, type="long")
    lost_before = counter("lease_lost_total", queue=q)
    # Poll-only: no NOTIFY says "cancelled", so the heartbeat finds the lease gone.
    async with running(dsn, registry_with(long=long), listen=False, queue=q,
                       lease_seconds=3) as w:
        await asyncio.wait_for(started.wait(), 10)
        await jobs.cancel(pool, job_id=jid)  # the lease is gone: someone else decided
        await asyncio.wait_for(cancelled.wait(), 5)  # within one heartbeat (1 s)
        assert jid not in w.held and w.free_slots == w.settings.concurrency
    job = await jobs.get(pool, job_id=jid)
    assert job.status is JobStatus.CANCELLED and job.result is None
    assert counter("lease_lost_total", queue=q) == lost_before + 1


async def test_a_cancel_notify_stops_the_handler_before_any_heartbeat(
    dsn: str, pool: db.Pool
) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def long(ctx: JobContext, data: Any) -> Any:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    [jid] = await submit(pool, t.id, 1, queue=q, type="long")
    lost_before = counter("lease_lost_total", queue=q)
    # A heartbeat every 20 s: only the NOTIFY can stop it within 5.
    async with running(dsn, registry_with(long=long), queue=q, lease_seconds=60) as w:
        await asyncio.wait_for(started.wait(), 10)
        await jobs.cancel(pool, job_id=jid)
        await asyncio.wait_for(cancelled.wait(), 5)
        assert jid not in w.held and w.free_slots == w.settings.concurrency
    job = await jobs.get(pool, job_id=jid)
    assert job.status is JobStatus.CANCELLED and job.attempt == 1 and job.result is None
    # A cancellation is not a lost lease.
    assert counter("lease_lost_total", queue=q) == lost_before


async def test_notify_wakes_an_idle_worker_long_before_the_poll(
    dsn: str, pool: db.Pool
) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    async with running(dsn, registry_with(), queue=q, poll_seconds=60):
        await asyncio.sleep(1.0)  # idle: LISTEN is up, the next poll is a minute away
        began = time.monotonic()
        [jid] = await submit(pool, t.id, 1, queue=q)
        await settled(pool, [jid], timeout=5)
        assert time.monotonic() - began < 3.0


async def test_poll_only_mode_runs_jobs_without_listen(dsn: str, pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    async with running(dsn, registry_with(), listen=False, queue=q, poll_seconds=0.2):
        await asyncio.sleep(0.3)
        ids = await submit(pool, t.id, 5, queue=q)
        done = await settled(pool, ids, timeout=5)
    assert {j.status for j in done} == {JobStatus.SUCCEEDED}


async def test_concurrency_limits_running_handlers(dsn: str, pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    now, peak = 0, 0

    async def busy(ctx: JobContext, data: Any) -> Any:
        nonlocal now, peak
        now += 1
        peak = max(peak, now)
        await asyncio.sleep(0.05)
        now -= 1

    ids = await submit(pool, t.id, 30, queue=q, type="busy")
    async with running(dsn, registry_with(busy=busy), queue=q, concurrency=4):
        await settled(pool, ids)
    assert peak == 4


async def test_graceful_stop_finishes_short_jobs_and_releases_long_ones(
    dsn: str, pool: db.Pool
) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    short = await submit(pool, t.id, 2, queue=q, type="sleep", data={"seconds": 0.3})
    long = await submit(pool, t.id, 2, queue=q, type="sleep", data={"seconds": 60})
    worker = Worker(dsn=dsn, settings=WorkerSettings(queue=q, grace_seconds=1.5),
                    registry=registry_with(), database=DatabaseSettings())
    task = asyncio.create_task(worker.run())
    await eventually(lambda: _count(pool, q, JobStatus.RUNNING, 4), timeout=15,
                     what="four running jobs")
    began = time.monotonic()
    worker.request_stop()
    assert await asyncio.wait_for(task, 15) == 0
    assert time.monotonic() - began < 6  # 1.5 s grace, not the 60 s jobs
    for jid in short:
        assert (await jobs.get(pool, job_id=jid)).status is JobStatus.SUCCEEDED
    for jid in long:
        job = await jobs.get(pool, job_id=jid)
        assert job.status is JobStatus.QUEUED
        assert job.attempt == 0  # released: the attempt was not burned
        assert job.lease_token is None and job.lease_owner is not None


async def _count(pool: db.Pool, queue: str, status: JobStatus, n: int) -> bool:
    page = await jobs.list_jobs(pool, tenant_id=None, status=status, queue=queue)
    return page.total == n
