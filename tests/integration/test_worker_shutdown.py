"""A stop that arrives while a lease is in flight strands no job: the lease
finishes, its jobs are held, then finished or released like any others."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jobqueue import db
from jobqueue.db import jobs, leases
from jobqueue.models import JobStatus, Lease
from jobqueue.settings import DatabaseSettings, WorkerSettings
from jobqueue.worker.worker import Worker
from tests import factories
from tests.support.worker import fresh_queue, registry_with, submit


async def test_a_stop_during_a_lease_leaves_no_job_leased(
    dsn: str, pool: db.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    ids = await submit(pool, t.id, 20, queue=q, type="sleep", data={"seconds": 60})
    worker = Worker(dsn=dsn, settings=WorkerSettings(queue=q, concurrency=10, grace_seconds=0.5),
                    registry=registry_with(), database=DatabaseSettings())
    real = leases.lease

    async def stopped_midway(conn: db.Executor, **kw: Any) -> list[Lease]:
        # The statement is on its way when the stop arrives. Shielded, as a
        # real one is in effect: the server finishes it whatever the caller does.
        call = asyncio.ensure_future(real(conn, **kw))
        await asyncio.sleep(0)
        worker.request_stop()
        return await asyncio.shield(call)

    monkeypatch.setattr(leases, "lease", stopped_midway)
    assert await asyncio.wait_for(worker.run(), 30) == 0
    found = [await jobs.get(pool, job_id=i) for i in ids]
    # Ten were leased by that call, then released at the stop: none is left
    # leased to the stopped worker, and no attempt was burned.
    assert {j.status for j in found} == {JobStatus.QUEUED}
    assert all(j.attempt == 0 for j in found)
    assert sum(j.lease_owner == worker.worker_id for j in found) == 10
