"""SIGTERM to a real worker process (docs/design.md, invariant 8): leasing stops,
running jobs get the grace period, the rest go back to the queue without
burning an attempt, and the process exits 0."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest

from jobqueue import db
from jobqueue.db import jobs
from jobqueue.models import JobId, JobStatus, NewJob
from tests import factories
from tests.support.procs import Proc
from tests.support.wait import eventually

pytestmark = pytest.mark.timeout(120)


async def submit(pool: db.Pool, tenant: str, seconds: float, n: int) -> list[JobId]:
    res = await jobs.submit_many(pool, tenant_id=tenant, jobs=[  # type: ignore[arg-type]
        NewJob(type="sleep", data={"seconds": seconds}) for _ in range(n)])
    return [r.job.id for r in res if not isinstance(r, Exception)]


async def running(pool: db.Pool, n: int) -> bool:
    page = await jobs.list_jobs(pool, tenant_id=None, status=JobStatus.RUNNING)
    return page.total == n


async def test_sigterm_finishes_short_jobs_and_releases_long_ones(
    dsn: str, pool: db.Pool, tmp_path: Path
) -> None:
    t = await factories.tenant(pool)
    short = await submit(pool, t.id, 1.0, 2)
    long = await submit(pool, t.id, 120, 2)
    worker = Proc("worker", ["worker", "--concurrency", "4", "--grace-seconds", "3"],
                  dsn=dsn, logdir=tmp_path).start()
    await eventually(lambda: running(pool, 4), timeout=30, what="four running jobs")
    worker.signal(signal.SIGTERM)
    began = time.monotonic()
    code = await asyncio.to_thread(worker.wait, 20)
    took = time.monotonic() - began
    assert code == 0
    assert 2.5 < took < 9, took  # waited out the 3 s grace for the long ones, not much more
    for jid in short:
        assert (await jobs.get(pool, job_id=jid)).status is JobStatus.SUCCEEDED
    for jid in long:
        job = await jobs.get(pool, job_id=jid)
        assert job.status is JobStatus.QUEUED
        assert job.attempt == 0 and job.errors == []  # no attempt burned
    events = [e["event"] for e in worker.events()]
    assert "released unfinished jobs without burning an attempt" in events
    # Nothing was leased after the signal: the queue still holds the long jobs.
    assert (await jobs.list_jobs(pool, tenant_id=t.id, status=JobStatus.QUEUED)).total == 2


async def test_sigterm_exits_as_soon_as_running_jobs_finish(
    dsn: str, pool: db.Pool, tmp_path: Path
) -> None:
    t = await factories.tenant(pool)
    ids = await submit(pool, t.id, 1.5, 3)
    worker = Proc("worker", ["worker", "--grace-seconds", "30"], dsn=dsn,
                  logdir=tmp_path).start()
    await eventually(lambda: running(pool, 3), timeout=30, what="three running jobs")
    began = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait, 20) == 0
    assert time.monotonic() - began < 10  # not the whole 30 s grace
    for jid in ids:
        assert (await jobs.get(pool, job_id=jid)).status is JobStatus.SUCCEEDED


async def test_a_stuck_sync_handler_does_not_keep_the_process_alive(
    dsn: str, pool: db.Pool, tmp_path: Path
) -> None:
    t = await factories.tenant(pool)
    [job] = await jobs.submit_many(pool, tenant_id=t.id, jobs=[
        NewJob(type="block-thread", data={"seconds": 120})])
    assert not isinstance(job, Exception)
    worker = Proc("worker", ["worker", "--grace-seconds", "1", "--handlers",
                             "tests.chaos.handlers"], dsn=dsn, logdir=tmp_path).start()
    await eventually(lambda: running(pool, 1), timeout=30, what="the job to run")
    began = time.monotonic()
    worker.signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait, 20) == 0
    assert time.monotonic() - began < 8  # the thread is abandoned after the 1 s grace
    after = await jobs.get(pool, job_id=job.job.id)
    assert after.status is JobStatus.QUEUED and after.attempt == 0
