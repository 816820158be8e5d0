"""The reaper against real Postgres: one pass, archiving, and leader election
(the Postgres elector) deciding who may act."""

from __future__ import annotations

import asyncio

from jobqueue import db
from jobqueue.db import jobs, leaders, leases
from jobqueue.models import JobId, JobStatus, WorkerId
from jobqueue.observability import logging as obslog
from jobqueue.process.service import WhileLeader
from jobqueue.reaper.leader import Leadership, PostgresElector
from jobqueue.reaper.reaper import Reaper, ReapResult
from jobqueue.settings import ReaperSettings
from tests import factories
from tests.support.wait import eventually

log = obslog.get_logger("test.reaper")


def reaper(pool: db.Pool, **kw: object) -> Reaper:
    return Reaper(pool, ReaperSettings(**kw), log=log)  # type: ignore[arg-type]


async def test_expired_leases_go_back_to_the_queue_or_the_dlq(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    again = await factories.submit(pool, t.id, max_attempts=3)
    last = await factories.submit(pool, t.id, max_attempts=1)
    held = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=10,
                              lease_seconds=0.2)
    assert len(held) == 2
    assert (await reaper(pool).run_once()).did_something is False  # not expired yet
    for h in held:
        await _expired(pool, h.job_id)
    result = await reaper(pool).run_once()
    assert (result.requeued, result.dead_lettered) == (1, 1)
    a = await jobs.get(pool, job_id=again.id)
    b = await jobs.get(pool, job_id=last.id)
    assert a.status is JobStatus.QUEUED and a.attempt == 1 and a.lease_token is None
    assert b.status is JobStatus.DLQ and b.finished_at is not None
    assert [e["error"] for e in a.errors] == ["lease expired"]
    assert b.last_error is not None and b.last_error.startswith("lease expired (worker w)")


async def test_a_job_acked_in_time_is_left_alone(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await factories.submit(pool, t.id)
    [held] = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=1,
                                lease_seconds=30)
    await leases.ack(pool, done=[(held.job_id, held.token, {"ok": 1})])
    assert (await reaper(pool).run_once()).did_something is False
    assert (await jobs.get(pool, job_id=held.job_id)).status is JobStatus.SUCCEEDED


async def test_finished_jobs_move_to_history_in_small_batches(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await factories.backlog(pool, t.id, 7)
    waiting = await factories.submit(pool, t.id, queue="other")
    held = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=10,
                              lease_seconds=30)
    await leases.ack(pool, done=[(h.job_id, h.token, None) for h in held])
    r = reaper(pool, archive_after_seconds=3600, archive_batch=3)
    assert (await r.run_once()).archived == 0  # too young
    await asyncio.sleep(0.05)
    r = reaper(pool, archive_after_seconds=0.01, archive_batch=3)
    passes = [await r.run_once() for _ in range(4)]
    assert [p.archived for p in passes] == [3, 3, 1, 0]
    assert passes[0].full and not passes[2].full
    assert r.totals["archived"] == 7 and r.totals["expired"] == 0
    assert await pool.fetchval("SELECT count(*) FROM jobs") == 1
    assert await pool.fetchval("SELECT count(*) FROM jobs_history") == 7
    # Moved, not gone: still read by id, finished as they were.
    assert (await jobs.get(pool, job_id=held[0].job_id)).status is JobStatus.SUCCEEDED
    assert (await jobs.get(pool, job_id=waiting.id)).status is JobStatus.QUEUED


async def test_one_of_three_candidates_leads_and_a_clean_stop_hands_over(
    pool: db.Pool,
) -> None:
    electors = [
        PostgresElector(pool, name="reaper-test", identity=f"c{i}", lease_seconds=2)
        for i in range(3)
    ]
    ships = [Leadership(e, log=log) for e in electors]
    tasks = [asyncio.create_task(s.run()) for s in ships]
    try:
        await eventually(lambda: sum(s.is_leader for s in ships) == 1, timeout=5,
                         what="one leader")
        for _ in range(20):  # stays exactly one over several renewals
            assert sum(s.is_leader for s in ships) == 1
            await asyncio.sleep(0.1)
        first = next(i for i, s in enumerate(ships) if s.is_leader)
        row = await leaders.get(pool, name="reaper-test")
        assert row is not None and row.holder == f"c{first}"
        tasks[first].cancel()  # a clean stop releases the lease
        await asyncio.gather(tasks[first], return_exceptions=True)
        await eventually(lambda: any(s.is_leader for i, s in enumerate(ships) if i != first),
                         timeout=ships[0].retry_every + 1.0, what="a successor")
        row = await leaders.get(pool, name="reaper-test")
        assert row is not None and row.holder != f"c{first}" and row.transitions == 1
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class SlowAnswer(PostgresElector):
    """A stand-in for a fault we cannot time for real: the claim commits on
    the server, then its answer is slow to come back."""

    def __init__(self, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.committed = asyncio.Event()

    async def try_acquire(self) -> bool:
        held = await super().try_acquire()
        self.committed.set()
        await asyncio.sleep(30)
        return held


async def test_a_stop_during_an_acquire_still_hands_the_lease_back(pool: db.Pool) -> None:
    elector = SlowAnswer(pool, name="reaper-test", identity="me", lease_seconds=30)
    ship = Leadership(elector, log=log)
    task = asyncio.create_task(ship.run())
    await asyncio.wait_for(elector.committed.wait(), 5)
    assert not ship.is_leader  # the answer has not arrived
    task.cancel()  # a clean stop, now
    await asyncio.gather(task, return_exceptions=True)
    row = await leaders.get(pool, name="reaper-test")
    assert row is not None and row.holder == "me"
    # Released: the next candidate takes it at once, not a lease period later.
    other = await leaders.acquire_or_renew(pool, name="reaper-test", candidate="other",
                                           lease_seconds=30)
    assert other.holder == "other"


async def test_a_reaper_that_loses_leadership_stops_reaping_at_once(pool: db.Pool) -> None:
    """Stepped one pass at a time: the election and the reaper never run on
    their own here, so nothing happens between the steps."""
    t = await factories.tenant(pool)
    mine = PostgresElector(pool, name="reaper-test", identity="me", lease_seconds=2)
    ship = Leadership(mine, log=log)
    r = reaper(pool, interval_seconds=0.05)
    gated = WhileLeader(r, ship)
    assert await ship.run_once() is True
    # Leading: an expired lease is reaped by the next pass.
    await factories.submit(pool, t.id)
    [h] = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=1,
                             lease_seconds=0.1)
    await _expired(pool, h.job_id)
    assert (await gated.run_once()) == ReapResult(requeued=1)
    assert (await jobs.get(pool, job_id=h.job_id)).status is JobStatus.QUEUED
    # Someone else takes over (our lease is made to end, as if it expired).
    await leaders.release(pool, name="reaper-test", candidate="me")
    other = await leaders.acquire_or_renew(pool, name="reaper-test", candidate="other",
                                           lease_seconds=30)
    assert other.holder == "other"
    # The next renewal sees the new holder; from then on no pass reaps.
    assert await ship.run_once() is False
    [h] = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=1,
                             lease_seconds=0.1)
    await _expired(pool, h.job_id)
    assert await gated.run_once() is None
    assert (await jobs.get(pool, job_id=h.job_id)).status is JobStatus.RUNNING
    assert r.totals["requeued"] == 1


async def _expired(pool: db.Pool, job_id: JobId) -> None:
    """Until the job's lease has expired on the database clock."""
    until = (await jobs.get(pool, job_id=job_id)).lease_expires_at
    assert until is not None

    async def expired() -> bool:
        return bool(await pool.fetchval("SELECT now() > $1", until))

    await eventually(expired, timeout=5, what="the lease to expire")


async def test_two_reapers_at_once_take_each_expired_lease_once(pool: db.Pool) -> None:
    t = await factories.tenant(pool, max_concurrent=1000)
    await factories.backlog(pool, t.id, 300)
    held = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=300,
                              lease_seconds=0.1)
    await _expired(pool, held[-1].job_id)  # one statement: they all expire together
    # A split brain: two reapers, small batches, racing over the same rows.
    a, b = reaper(pool, batch=20), reaper(pool, batch=20)

    async def drain(r: Reaper) -> None:
        while (await r.run_once(archive=False)).full:
            pass

    await asyncio.gather(drain(a), drain(b), drain(a), drain(b))
    assert a.totals["requeued"] + b.totals["requeued"] == 300
    assert len(held) == 300
    page = await jobs.list_jobs(pool, tenant_id=t.id, page_size=1000)
    assert {j.status for j in page.jobs} == {JobStatus.QUEUED}
    assert {len(j.errors) for j in page.jobs} == {1}  # one expiry counted per lease
