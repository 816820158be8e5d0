"""A queue's default max_attempts: stored in its row, applied at insert to
jobs that do not say, and invisible to idempotent replays."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from jobqueue import db, errors
from jobqueue.db import jobs, leases, queues
from jobqueue.models import JobStatus, NewJob, Submitted, WorkerId
from tests import factories


async def test_configure_writes_only_a_difference_and_none_clears(pool: db.Pool) -> None:
    assert (await queues.get_defaults(pool, queue="mail")).default_max_attempts is None
    assert (await queues.get_defaults(pool, queue="mail")).max_attempts == 5

    assert await queues.configure(pool, queue="mail", default_max_attempts=3) is True
    assert await queues.configure(pool, queue="mail", default_max_attempts=3) is False
    got = await queues.get_defaults(pool, queue="mail")
    assert (got.default_max_attempts, got.max_attempts) == (3, 3)

    assert await queues.configure(pool, queue="mail", default_max_attempts=8) is True
    assert (await queues.get_defaults(pool, queue="mail")).default_max_attempts == 8
    assert await queues.configure(pool, queue="mail", default_max_attempts=None) is True
    assert await queues.configure(pool, queue="mail", default_max_attempts=None) is False
    assert (await queues.get_defaults(pool, queue="mail")).max_attempts == 5


async def test_configure_keeps_the_fair_queueing_clock_of_a_leased_queue(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await factories.backlog(pool, t.id, 3, queue="busy")
    # The first lease creates the row and moves its virtual clock.
    await leases.lease(pool, queue="busy", worker_id=WorkerId("w"), limit=3, lease_seconds=30)
    before = await pool.fetchval("SELECT vclock FROM queues WHERE name = 'busy'")
    assert before > 0
    assert await queues.configure(pool, queue="busy", default_max_attempts=2) is True
    assert await pool.fetchval("SELECT vclock FROM queues WHERE name = 'busy'") == before


@pytest.mark.parametrize("bad", [0, -1, 1001])
async def test_out_of_range_defaults_are_refused_and_change_nothing(
    pool: db.Pool, bad: int
) -> None:
    await queues.configure(pool, queue="mail", default_max_attempts=4)
    with pytest.raises(errors.InvalidInput):
        await queues.configure(pool, queue="mail", default_max_attempts=bad)
    assert (await queues.get_defaults(pool, queue="mail")).default_max_attempts == 4


async def test_a_queue_name_no_job_could_have_is_refused(pool: db.Pool) -> None:
    for name in ("", "q" * 64):
        with pytest.raises(errors.InvalidInput):
            await queues.configure(pool, queue=name, default_max_attempts=2)


async def test_jobs_without_max_attempts_take_their_queues_default_at_insert(
    pool: db.Pool,
) -> None:
    t = await factories.tenant(pool)
    await queues.configure(pool, queue="two", default_max_attempts=2)
    await queues.configure(pool, queue="nine", default_max_attempts=9)

    async def one(**kw: Any) -> int:
        submitted = await jobs.submit(pool, tenant_id=t.id, job=NewJob(type="echo", **kw))
        return submitted.job.max_attempts

    assert await one(queue="two") == 2
    assert await one(queue="two", max_attempts=7) == 7  # explicit wins
    assert await one(queue="two", max_attempts=5) == 5
    assert await one(queue="unconfigured") == 5
    assert await one(queue="default") == 5

    batch = await jobs.submit_many(
        pool,
        tenant_id=t.id,
        jobs=[
            NewJob(type="echo", queue="two"),
            NewJob(type="echo", queue="nine"),
            NewJob(type="echo", queue="nine", max_attempts=1),
            NewJob(type="echo", queue="elsewhere"),
            NewJob(type="echo", queue="two", idempotency_key="b1"),
        ],
    )
    assert [r.job.max_attempts for r in batch if isinstance(r, Submitted)] == [2, 9, 1, 5, 2]

    # A later change of the default leaves queued jobs as they were.
    await queues.configure(pool, queue="two", default_max_attempts=4)
    page = await jobs.list_jobs(pool, tenant_id=t.id, queue="two")
    assert sorted(j.max_attempts for j in page.jobs) == [2, 2, 2, 5, 7]
    assert await one(queue="two") == 4


async def test_a_job_that_omits_max_attempts_dead_letters_after_the_queue_default(
    pool: db.Pool,
) -> None:
    t = await factories.tenant(pool)
    await queues.configure(pool, queue="strict", default_max_attempts=2)
    job = (await jobs.submit(pool, tenant_id=t.id, job=NewJob(type="echo", queue="strict"))).job
    outcomes = []
    for attempt in (1, 2):
        [held] = await leases.lease(
            pool, queue="strict", worker_id=WorkerId("w"), limit=1, lease_seconds=30
        )
        assert held.job.attempt == attempt
        done = await leases.fail(
            pool, job_id=held.job_id, token=held.token, error=f"e{attempt}", retry_in_seconds=0
        )
        assert done is not None
        outcomes.append(done.status)
    assert outcomes == [JobStatus.QUEUED, JobStatus.DLQ]
    final = await jobs.get(pool, job_id=job.id)
    assert (final.status, final.attempt, final.max_attempts) == (JobStatus.DLQ, 2, 2)


async def test_replaying_an_omitted_max_attempts_is_a_replay_even_after_the_default_changed(
    pool: db.Pool,
) -> None:
    t = await factories.tenant(pool)
    await queues.configure(pool, queue="mail", default_max_attempts=2)
    request = NewJob(type="echo", queue="mail", data={"to": "a"}, idempotency_key="k1")
    first = await jobs.submit(pool, tenant_id=t.id, job=request)
    await queues.configure(pool, queue="mail", default_max_attempts=6)
    again = await jobs.submit(pool, tenant_id=t.id, job=request)
    assert (first.replayed, again.replayed) == (False, True)
    assert again.job.id == first.job.id and again.job.max_attempts == 2

    [in_batch] = await jobs.submit_many(pool, tenant_id=t.id, jobs=[request])
    assert isinstance(in_batch, Submitted) and in_batch.replayed
    assert in_batch.job.id == first.job.id

    # Asking for a number the first request did not ask for is another request.
    with pytest.raises(errors.IdempotencyConflict):
        await jobs.submit(
            pool, tenant_id=t.id, job=replace(request, max_attempts=2)
        )
    assert (await jobs.list_jobs(pool, tenant_id=t.id)).total == 1


async def test_an_explicit_request_replayed_without_max_attempts_conflicts(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    explicit = NewJob(type="echo", data={"n": 1}, max_attempts=7, idempotency_key="k2")
    await jobs.submit(pool, tenant_id=t.id, job=explicit)
    with pytest.raises(errors.IdempotencyConflict):
        await jobs.submit(
            pool, tenant_id=t.id, job=replace(explicit, max_attempts=None)
        )


async def test_a_request_stored_before_queue_defaults_still_replays(pool: db.Pool) -> None:
    """Version 1 recorded an omitted max_attempts as 5: the same request,
    retried against this version during a rolling upgrade, is a replay."""
    t = await factories.tenant(pool)
    old = NewJob(type="echo", data={"n": 2}, max_attempts=5, idempotency_key="k3")
    first = await jobs.submit(pool, tenant_id=t.id, job=old)
    retried = await jobs.submit(
        pool, tenant_id=t.id, job=replace(old, max_attempts=None)
    )
    assert retried.replayed and retried.job.id == first.job.id

