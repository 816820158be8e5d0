"""Batch transitions lock their jobs in one order (job id), and a deadlock
the server breaks is an error callers retry, not a refusal that stops a
worker: a heartbeat and an ack of one worker deadlocked under load (a
200,000-job drain) and the worker exited."""

from __future__ import annotations

import asyncio

import pytest

from jobqueue import db, errors
from jobqueue.db import leases
from jobqueue.models import JobId, Lease, LeaseToken, WorkerId
from tests import factories


async def _held(pool: db.Pool, n: int) -> list[Lease]:
    t = await factories.tenant(pool)
    await factories.backlog(pool, t.id, n, queue="locks")
    got = await leases.lease(pool, queue="locks", worker_id=WorkerId("w"), limit=n,
                             lease_seconds=60)
    assert len(got) == n
    return sorted(got, key=lambda h: h.job_id)


def _pairs(held: list[Lease]) -> list[tuple[JobId, LeaseToken]]:
    return [(h.job_id, h.token) for h in held]


async def test_a_batch_given_out_of_order_locks_the_lowest_id_first(pool: db.Pool) -> None:
    low, high = await _held(pool, 2)
    async with pool.acquire() as blocker, pool.acquire() as beater, pool.acquire() as probe:
        hold = blocker.transaction()
        await hold.start()
        await blocker.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", high.job_id)
        # Given high first; locked in id order it takes `low`, then waits.
        beat = asyncio.create_task(
            leases.heartbeat(beater, held=_pairs([high, low]), lease_seconds=60))
        try:
            await asyncio.sleep(0.5)
            assert not beat.done()
            with pytest.raises(Exception, match="could not obtain lock"):
                await probe.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE NOWAIT",
                                    low.job_id)
        finally:
            await hold.rollback()
        assert await beat == {low.job_id, high.job_id}


async def test_a_deadlock_is_a_statement_conflict_that_callers_retry(pool: db.Pool) -> None:
    a, b = await _held(pool, 2)
    async with pool.acquire() as one, pool.acquire() as two:
        await one.execute("SET deadlock_timeout = '100ms'")
        await two.execute("SET deadlock_timeout = '100ms'")
        t1 = one.transaction()
        t2 = two.transaction()
        await t1.start()
        await t2.start()
        try:
            # Each holds one job and then asks for the other's: a real
            # deadlock, broken by the server in one of the two.
            await one.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", a.job_id)
            await two.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", b.job_id)
            outcomes = await asyncio.gather(
                leases.heartbeat(one, held=_pairs([b]), lease_seconds=60),
                leases.heartbeat(two, held=_pairs([a]), lease_seconds=60),
                return_exceptions=True,
            )
        finally:
            for t in (t1, t2):
                await t.rollback()
    conflicts = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(conflicts) == 1, outcomes
    assert isinstance(conflicts[0], errors.StatementConflict)
    # The worker's heartbeat, completer and release retry DatabaseUnavailable.
    assert isinstance(conflicts[0], errors.DatabaseUnavailable)
    assert "DeadlockDetectedError" in str(conflicts[0])
