"""Invariant 1: a submission is accepted exactly once per (tenant, key)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from jobqueue import db, errors
from jobqueue.db import jobs, queues
from jobqueue.models import JobStatus, NewJob, Priority, Submitted
from tests import factories


async def test_same_key_same_request_returns_the_existing_job(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    job = NewJob(type="echo", data={"a": 1}, idempotency_key="k1")
    first = await jobs.submit(pool, tenant_id=t.id, job=job)
    again = await jobs.submit(pool, tenant_id=t.id, job=job)
    assert not first.replayed
    assert again.replayed
    assert again.job.id == first.job.id


async def test_same_key_different_request_is_a_conflict_and_changes_nothing(
    pool: db.Pool,
) -> None:
    t = await factories.tenant(pool)
    first = await jobs.submit(
        pool, tenant_id=t.id, job=NewJob(type="echo", data={"a": 1}, idempotency_key="k1")
    )
    with pytest.raises(errors.IdempotencyConflict) as caught:
        await jobs.submit(
            pool, tenant_id=t.id, job=NewJob(type="echo", data={"a": 2}, idempotency_key="k1")
        )
    assert caught.value.existing_job_id == first.job.id
    page = await jobs.list_jobs(pool, tenant_id=t.id)
    assert page.total == 1
    assert page.jobs[0].data == {"a": 1}


async def test_different_tenants_may_reuse_a_key(pool: db.Pool) -> None:
    a = await factories.tenant(pool)
    b = await factories.tenant(pool)
    job = NewJob(type="echo", idempotency_key="shared")
    ja = await jobs.submit(pool, tenant_id=a.id, job=job)
    jb = await jobs.submit(pool, tenant_id=b.id, job=job)
    assert not ja.replayed and not jb.replayed
    assert ja.job.id != jb.job.id


async def test_fifty_concurrent_submissions_with_one_key_make_one_job(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    job = NewJob(type="echo", data={"x": 1}, idempotency_key="race")
    results = await asyncio.gather(
        *(jobs.submit(pool, tenant_id=t.id, job=job) for _ in range(50))
    )
    assert len({r.job.id for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert (await jobs.list_jobs(pool, tenant_id=t.id)).total == 1


async def test_batch_reports_per_item_new_replay_and_conflict(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    existing = await jobs.submit(
        pool, tenant_id=t.id, job=NewJob(type="echo", data=1, idempotency_key="old")
    )
    batch = [
        NewJob(type="echo", data=1, idempotency_key="old"),  # replay
        NewJob(type="echo", data=2, idempotency_key="old"),  # conflict
        NewJob(type="echo", data=3, idempotency_key="new"),  # new
        NewJob(type="echo", data=3, idempotency_key="new"),  # replay within the batch
        NewJob(type="echo", data=4),  # no key: always new
    ]
    out = await jobs.submit_many(pool, tenant_id=t.id, jobs=batch)
    assert len(out) == 5
    r0, r1, r2, r3, r4 = out
    assert isinstance(r0, type(existing)) and r0.replayed and r0.job.id == existing.job.id
    assert isinstance(r1, errors.IdempotencyConflict)
    assert isinstance(r2, type(existing)) and not r2.replayed
    assert isinstance(r3, type(existing)) and r3.replayed and r3.job.id == r2.job.id
    assert isinstance(r4, type(existing)) and not r4.replayed
    assert (await jobs.list_jobs(pool, tenant_id=t.id)).total == 3


async def test_batch_results_are_the_stored_jobs(pool: db.Pool) -> None:
    # submit_many builds its results from the request and the few columns
    # the insert returns: they must be what a read finds.
    t = await factories.tenant(pool)
    await queues.configure(pool, queue="q7", default_max_attempts=7)
    batch = [
        NewJob(type="echo", data={"b": [1, 2.5, None], "a": "x"}, idempotency_key="k1"),
        NewJob(type="echo", data=[1, {"z": 1e16}], queue="q7", priority=Priority.HIGH,
               timeout_seconds=60, trace_context={"traceparent": "00-" + "1" * 32 + "-"
                                                   + "2" * 16 + "-01"}),
        NewJob(type="echo", data="s", max_attempts=2,
               run_at=datetime(2030, 1, 1, tzinfo=UTC), idempotency_key="k2"),
        NewJob(type="echo", data={"b": [1, 2.5, None], "a": "x"}, idempotency_key="k1"),
    ]
    out = await jobs.submit_many(pool, tenant_id=t.id, jobs=batch)
    for r in out:
        assert isinstance(r, Submitted)
        assert r.job == await jobs.get(pool, job_id=r.job.id)
    assert [r.job.max_attempts for r in out if isinstance(r, Submitted)] == [5, 7, 2, 5]
    assert [r.replayed for r in out if isinstance(r, Submitted)] == [False, False, False, True]


async def test_full_backlog_refuses_new_jobs_but_answers_replays(pool: db.Pool) -> None:
    t = await factories.tenant(pool, max_queued=3)
    for i in range(3):
        await jobs.submit(
            pool, tenant_id=t.id, job=NewJob(type="echo", idempotency_key=f"k{i}"), max_queued=3
        )
    with pytest.raises(errors.QuotaExceeded):
        await jobs.submit(
            pool, tenant_id=t.id, job=NewJob(type="echo", idempotency_key="k9"), max_queued=3
        )
    replay = await jobs.submit(
        pool, tenant_id=t.id, job=NewJob(type="echo", idempotency_key="k0"), max_queued=3
    )
    assert replay.replayed
    assert (await jobs.list_jobs(pool, tenant_id=t.id)).total == 3


async def test_unknown_tenant_and_bad_values_are_refused(pool: db.Pool) -> None:
    with pytest.raises(errors.TenantNotFound):
        await jobs.submit(pool, tenant_id=factories.TenantId("nobody"), job=NewJob(type="echo"))
    t = await factories.tenant(pool)
    with pytest.raises(errors.InvalidInput):
        await jobs.submit(pool, tenant_id=t.id, job=NewJob(type="echo", max_attempts=0))
    assert (await jobs.list_jobs(pool, tenant_id=t.id)).total == 0


async def test_list_filters_pages_and_hides_other_tenants(pool: db.Pool) -> None:
    a = await factories.tenant(pool)
    b = await factories.tenant(pool)
    await factories.backlog(pool, a.id, 25, queue="q1")
    await factories.backlog(pool, a.id, 5, queue="q2", priority=Priority.HIGH)
    await factories.backlog(pool, b.id, 7, queue="q1")
    page1 = await jobs.list_jobs(pool, tenant_id=a.id, queue="q1", page=1, page_size=10)
    page3 = await jobs.list_jobs(pool, tenant_id=a.id, queue="q1", page=3, page_size=10)
    assert page1.total == 25 and len(page1.jobs) == 10 and len(page3.jobs) == 5
    seen = [j.id for p in (1, 2, 3) for j in (
        await jobs.list_jobs(pool, tenant_id=a.id, queue="q1", page=p, page_size=10)
    ).jobs]
    assert len(set(seen)) == 25  # stable order: no job twice, none missing
    assert all(j.tenant_id == a.id for j in page1.jobs)
    queued = await jobs.list_jobs(pool, tenant_id=b.id, status=JobStatus.QUEUED)
    assert queued.total == 7
    with pytest.raises(errors.JobNotFound):
        await jobs.get(pool, job_id=page1.jobs[0].id, tenant_id=b.id)
