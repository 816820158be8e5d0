"""Invariants 2 and 6 under real races: 16 leasers, thousands of jobs."""

from __future__ import annotations

import asyncio
import collections
import random

from jobqueue import db
from jobqueue.db import leases
from jobqueue.models import JobId, Lease, TenantId, WorkerId
from tests import factories

LEASERS = 16


async def _drain(
    pool: db.Pool, *, limit: int, on_lease: collections.abc.Callable[[Lease], None] | None = None,
    ack_delay: float = 0.0, seed: int = 7,
) -> list[tuple[WorkerId, Lease]]:
    """16 concurrent leasers lease, (optionally) hold a moment, and ack until empty."""
    got: list[tuple[WorkerId, Lease]] = []
    rng = random.Random(seed)

    async def leaser(n: int) -> None:
        me = WorkerId(f"w{n}")
        idle = 0
        while idle < 3:
            batch = await leases.lease(
                pool, queue="default", worker_id=me, limit=rng.randint(1, limit), lease_seconds=60
            )
            if not batch:
                idle += 1
                await asyncio.sleep(0.02)
                continue
            idle = 0
            for held in batch:
                got.append((me, held))
                if on_lease:
                    on_lease(held)
            if ack_delay:
                await asyncio.sleep(rng.random() * ack_delay)
            done = await leases.ack(pool, done=[(h.job_id, h.token, None) for h in batch])
            assert len(done) == len(batch)

    await asyncio.gather(*(leaser(n) for n in range(LEASERS)))
    return got


async def test_no_job_is_leased_twice_under_sixteen_racing_leasers(pool: db.Pool) -> None:
    t = await factories.tenant(pool, max_concurrent=10_000)
    submitted = await factories.backlog(pool, t.id, 2000)
    got = await _drain(pool, limit=20)
    counts = collections.Counter(held.job_id for _, held in got)
    assert set(counts) == {j.id for j in submitted}
    assert max(counts.values()) == 1
    assert len({w for w, _ in got}) > 1  # the leasers really did share the work


async def test_max_concurrent_is_never_exceeded_when_leasers_race_without_acks(
    pool: db.Pool,
) -> None:
    """The count-then-lease race, in its purest form: every leaser sees free
    slots at once. Only max_concurrent may win, round after round."""
    t = await factories.tenant(pool, max_concurrent=3)
    await factories.backlog(pool, t.id, 2000)
    for _ in range(30):
        rounds = await asyncio.gather(*(
            leases.lease(pool, queue="default", worker_id=WorkerId(f"w{n}"), limit=3,
                         lease_seconds=60)
            for n in range(LEASERS)
        ))
        won = [h for batch in rounds for h in batch]
        assert len(won) == 3
        await leases.ack(pool, done=[(h.job_id, h.token, None) for h in won])


async def test_max_concurrent_holds_at_every_instant_while_draining(pool: db.Pool) -> None:
    t = await factories.tenant(pool, max_concurrent=3)
    other = await factories.tenant(pool, max_concurrent=10_000)
    await factories.backlog(pool, t.id, 2000)
    await factories.backlog(pool, other.id, 500)
    samples: list[int] = []
    stop = asyncio.Event()

    async def monitor() -> None:
        while not stop.is_set():
            samples.append(await pool.fetchval(
                "SELECT count(*) FROM jobs WHERE tenant_id = $1"
                " AND status IN ('leased', 'running')", t.id))

    watcher = asyncio.create_task(monitor())
    got = await _drain(pool, limit=5, ack_delay=0.002)
    stop.set()
    await watcher
    assert sum(1 for _, h in got if h.job.tenant_id == t.id) == 2000
    assert len(samples) > 100
    assert max(samples) <= 3
    assert max(samples) == 3  # the limit was reached, so it was really tested


async def test_a_deep_backlog_does_not_delay_another_tenants_first_job(pool: db.Pool) -> None:
    big = await factories.tenant(pool)
    small = await factories.tenant(pool)
    await factories.backlog(pool, big.id, 10_000)
    for _ in range(5):  # the big tenant has been served for a while
        await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=10,
                           lease_seconds=60)
    first = await factories.submit(pool, small.id)
    next_round = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=10,
                                    lease_seconds=60)
    assert first.id in {h.job_id for h in next_round}


async def _shares(pool: db.Pool, a: TenantId, b: TenantId, *, limit: int, total: int) -> float:
    served: collections.Counter[TenantId] = collections.Counter()
    n = 0
    while n < total:
        batch = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=limit,
                                   lease_seconds=60)
        assert batch
        served.update(h.job.tenant_id for h in batch)
        n += len(batch)
        await leases.ack(pool, done=[(h.job_id, h.token, None) for h in batch])
    return served[b] / max(served[a], 1)


async def test_weights_one_and_three_share_capacity_one_to_three(pool: db.Pool) -> None:
    light = await factories.tenant(pool, weight=1, max_concurrent=10_000)
    heavy = await factories.tenant(pool, weight=3, max_concurrent=10_000)
    await factories.backlog(pool, light.id, 2000)
    await factories.backlog(pool, heavy.id, 2000)
    # Batches of one are the hard case: per-batch weighting alone would starve
    # someone; the virtual clock must carry the share across rounds.
    assert 2.7 <= await _shares(pool, light.id, heavy.id, limit=1, total=400) <= 3.3
    assert 2.7 <= await _shares(pool, light.id, heavy.id, limit=16, total=1600) <= 3.3


async def test_a_returning_tenant_gets_no_hoarded_credit(pool: db.Pool) -> None:
    a = await factories.tenant(pool, max_concurrent=10_000)
    b = await factories.tenant(pool, max_concurrent=10_000)
    await factories.backlog(pool, a.id, 1000)
    await _shares(pool, b.id, a.id, limit=10, total=500)  # only a is busy
    await factories.backlog(pool, b.id, 1000)  # b comes back
    ratio = await _shares(pool, a.id, b.id, limit=10, total=400)
    assert 0.8 <= ratio <= 1.25


def _ids(got: list[tuple[WorkerId, Lease]]) -> set[JobId]:
    return {h.job_id for _, h in got}
