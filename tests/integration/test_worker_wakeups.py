"""What wakes the worker's fetcher: a finished job refills its slot at once
while the queue may hold more, and costs no lease once the queue is drained."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from jobqueue import db
from jobqueue.db import jobs, leases
from jobqueue.models import Lease
from jobqueue.observability import logging as obslog
from jobqueue.worker.wakeup import Wakeup
from tests import factories
from tests.support.worker import fresh_queue, registry_with, running, settled, submit


@pytest.fixture
def lease_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many jobs each real lease call returned, in order."""
    sizes: list[int] = []
    real = leases.lease

    async def counting(conn: db.Executor, **kw: Any) -> list[Lease]:
        got = await real(conn, **kw)
        sizes.append(len(got))
        return got

    monkeypatch.setattr(leases, "lease", counting)
    return sizes


async def test_a_finished_job_costs_no_empty_lease_at_light_load(
    dsn: str, pool: db.Pool, lease_sizes: list[int]
) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    async with running(dsn, registry_with(), queue=q, concurrency=10, poll_seconds=60):
        await asyncio.sleep(0.5)  # past the start-up leases (empty queue, LISTEN up)
        start_up = len(lease_sizes)
        for _ in range(5):
            ids = await submit(pool, t.id, 1, queue=q)  # its NOTIFY wakes the fetcher
            await settled(pool, ids, timeout=5)
            await asyncio.sleep(0.2)  # time for a lease the freed slot might trigger
    # One lease per job, none after it: its freed slot did not wake the fetcher.
    assert lease_sizes[start_up:] == [1] * 5


async def test_freed_slots_refill_at_once_while_the_queue_holds_more(
    dsn: str, pool: db.Pool, lease_sizes: list[int]
) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    ids = await submit(pool, t.id, 7, queue=q)
    # No poll for a minute: only freed slots can drive the next leases.
    async with running(dsn, registry_with(), queue=q, concurrency=2, poll_seconds=60):
        await settled(pool, ids, timeout=5)
    assert sum(lease_sizes) == 7 and max(lease_sizes) == 2


async def test_wakeup_hears_jobs_queued_in_its_queue_and_nothing_else(
    dsn: str, pool: db.Pool
) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    wake = Wakeup(dsn=dsn, queue=q, log=obslog.get_logger("test"))
    listener = asyncio.create_task(wake.listen())
    try:
        assert await wake.wait(5)  # LISTEN is up (a connect wakes the fetcher once)
        wake.clear()
        await submit(pool, t.id, 1, queue=f"other-{q}")
        assert not await wake.wait(0.5)
        [jid] = await submit(pool, t.id, 1, queue=q)
        assert await wake.wait(5)
        wake.clear()
        await jobs.cancel(pool, job_id=jid)  # a status change that brings no work
        assert not await wake.wait(0.5)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


async def test_without_listen_a_freed_slot_still_looks_for_new_work(
    dsn: str, pool: db.Pool
) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    first = await submit(pool, t.id, 1, queue=q, type="sleep", data={"seconds": 0.5})
    async with running(dsn, registry_with(), listen=False, queue=q, concurrency=2,
                       poll_seconds=60):
        await asyncio.sleep(0.2)  # the first job runs; the next poll is a minute away
        later = await submit(pool, t.id, 1, queue=q)
        # Nothing announces it (no LISTEN): the first job's freed slot finds it.
        await settled(pool, first + later, timeout=5)
