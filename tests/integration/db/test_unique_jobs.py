"""Invariant 12: a unique job is never created twice, under any race."""

from __future__ import annotations

import asyncio

import pytest

from jobqueue import db, errors, unique
from jobqueue.db import jobs, leases
from jobqueue.models import JobStatus, NewJob, WorkerId
from tests import factories


def _job(data: object, *, key: str | None = None, **opts: object) -> NewJob:
    return NewJob(type="report", data=data, idempotency_key=key, unique=unique.of(**opts))  # type: ignore[arg-type]


async def _count(pool: db.Pool, tenant: str) -> int:
    return (await jobs.list_jobs(pool, tenant_id=tenant)).total  # type: ignore[arg-type]


async def test_fifty_concurrent_unique_submits_with_distinct_keys_make_one_job(
    pool: db.Pool,
) -> None:
    t = await factories.tenant(pool)
    # Different idempotency keys, other payload keys differ too: only the
    # unique keys make them the same job.
    racers = [
        _job({"account": 7, "nonce": i}, key=f"k{i}", keys=["account"], period_seconds=600)
        for i in range(50)
    ]
    results = await asyncio.gather(*(jobs.submit(pool, tenant_id=t.id, job=j) for j in racers))
    created = [r for r in results if not r.duplicate and not r.replayed]
    assert len(created) == 1
    assert {r.job.id for r in results} == {created[0].job.id}
    assert sum(r.duplicate for r in results) == 49
    assert await _count(pool, t.id) == 1


async def test_fifty_concurrent_unique_submits_without_idempotency_keys_make_one_job(
    pool: db.Pool,
) -> None:
    t = await factories.tenant(pool)
    results = await asyncio.gather(
        *(jobs.submit(pool, tenant_id=t.id, job=_job({"a": 1})) for _ in range(50))
    )
    assert len({r.job.id for r in results}) == 1
    assert await _count(pool, t.id) == 1


async def test_other_values_queues_types_and_tenants_are_not_duplicates(pool: db.Pool) -> None:
    a = await factories.tenant(pool)
    b = await factories.tenant(pool)
    base = _job({"account": 1}, keys=["account"])
    variants = [
        base,
        _job({"account": 2}, keys=["account"]),
        NewJob(type="report", data={"account": 1}, queue="other", unique=base.unique),
        NewJob(type="invoice", data={"account": 1}, unique=base.unique),
        _job({"other": 1}, keys=["account"]),  # the key is missing: another value
    ]
    for v in variants:
        assert not (await jobs.submit(pool, tenant_id=a.id, job=v)).duplicate
    assert not (await jobs.submit(pool, tenant_id=b.id, job=base)).duplicate
    again = await jobs.submit(pool, tenant_id=a.id, job=base)
    assert again.duplicate
    assert await _count(pool, a.id) == 5


async def test_a_job_outside_the_states_no_longer_blocks(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    job = _job({"a": 1}, states=["queued"])
    first = await jobs.submit(pool, tenant_id=t.id, job=job)
    assert (await jobs.submit(pool, tenant_id=t.id, job=job)).duplicate
    leased = await leases.lease(
        pool, queue="default", worker_id=WorkerId("w"), limit=1, lease_seconds=30
    )
    assert [lz.job_id for lz in leased] == [first.job.id]
    second = await jobs.submit(pool, tenant_id=t.id, job=job)
    assert not second.duplicate and second.job.id != first.job.id


async def test_default_states_let_a_cancelled_job_be_submitted_again(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    job = _job({"a": 1})
    first = await jobs.submit(pool, tenant_id=t.id, job=job)
    await jobs.cancel(pool, job_id=first.job.id)
    assert first.job.status is JobStatus.QUEUED
    assert not (await jobs.submit(pool, tenant_id=t.id, job=job)).duplicate


async def test_a_job_older_than_the_period_no_longer_blocks(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    job = _job({"a": 1}, period_seconds=60)
    first = await jobs.submit(pool, tenant_id=t.id, job=job)
    assert (await jobs.submit(pool, tenant_id=t.id, job=job)).duplicate
    await pool.execute(
        "UPDATE jobs SET created_at = now() - interval '61 seconds' WHERE id = $1", first.job.id
    )
    assert not (await jobs.submit(pool, tenant_id=t.id, job=job)).duplicate


async def test_idempotency_keys_behave_as_before_on_unique_jobs(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    first = await jobs.submit(pool, tenant_id=t.id, job=_job({"a": 1}, key="k"))
    replay = await jobs.submit(pool, tenant_id=t.id, job=_job({"a": 1}, key="k"))
    assert replay.replayed and not replay.duplicate and replay.job.id == first.job.id
    with pytest.raises(errors.IdempotencyConflict):
        await jobs.submit(pool, tenant_id=t.id, job=_job({"a": 2}, key="k"))
    # A key first used without unique: still a replay, never a second job.
    plain = NewJob(type="report", data={"b": 1}, idempotency_key="p")
    made = await jobs.submit(pool, tenant_id=t.id, job=plain)
    again = await jobs.submit(
        pool, tenant_id=t.id,
        job=NewJob(type="report", data={"b": 1}, idempotency_key="p", unique=unique.of()),
    )
    assert again.replayed and again.job.id == made.job.id
    assert await _count(pool, t.id) == 2


async def test_fifty_concurrent_submits_of_one_key_with_and_without_unique_make_one_job(
    pool: db.Pool,
) -> None:
    t = await factories.tenant(pool)
    plain = NewJob(type="report", data={"a": 1}, idempotency_key="race")
    uniq = NewJob(type="report", data={"a": 1}, idempotency_key="race", unique=unique.of())
    results = await asyncio.gather(
        *(jobs.submit(pool, tenant_id=t.id, job=plain if i % 2 else uniq) for i in range(50))
    )
    assert len({r.job.id for r in results}) == 1
    assert sum(not r.replayed and not r.duplicate for r in results) == 1
    assert await _count(pool, t.id) == 1


async def test_bad_unique_options_are_refused_and_change_nothing(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    bad = [
        _job([1, 2], keys=["a"]),  # keys need an object
        _job({"a": 1}, keys=[]),
        _job({"a": 1}, period_seconds=0),
        _job({"a": 1}, states=[]),
    ]
    for job in bad:
        with pytest.raises(errors.InvalidInput):
            await jobs.submit(pool, tenant_id=t.id, job=job)
    with pytest.raises(errors.InvalidInput, match="batch"):
        await jobs.submit_many(pool, tenant_id=t.id, jobs=[_job({"a": 1})])
    with pytest.raises(ValueError):
        unique.of(states=["finished"])
    assert await _count(pool, t.id) == 0
