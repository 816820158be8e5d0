"""Bulk retry and cancel: bounded batches, oldest first, rows another
transaction holds skipped (and reported as remaining), one tenant only."""

from __future__ import annotations

from jobqueue import db
from jobqueue.db import bulk, jobs
from jobqueue.db.listing import Filter
from jobqueue.models import JobStatus
from tests import factories


async def test_batches_go_oldest_first_until_nothing_remains(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    other = await factories.tenant(pool)
    mine = [await factories.submit(pool, t.id, queue="b") for _ in range(5)]
    theirs = await factories.submit(pool, other.id, queue="b")

    first = await bulk.cancel(pool, tenant_id=t.id, where=Filter(queue="b"), limit=3)
    assert (first.by_tenant, first.more) == ({t.id: 3}, True)
    assert [(await jobs.get(pool, job_id=j.id)).status for j in mine] == (
        [JobStatus.CANCELLED] * 3 + [JobStatus.QUEUED] * 2)
    second = await bulk.cancel(pool, tenant_id=t.id, where=Filter(queue="b"), limit=3)
    assert (second.changed, second.more) == (2, False)
    assert (await jobs.get(pool, job_id=theirs.id)).status is JobStatus.QUEUED

    back = await bulk.retry(pool, tenant_id=t.id, where=Filter(status=JobStatus.CANCELLED),
                            limit=5, reset_attempts=True)
    assert (back.changed, back.more) == (5, False)
    assert {(await jobs.get(pool, job_id=j.id)).status for j in mine} == {JobStatus.QUEUED}


async def test_a_row_another_transaction_holds_is_skipped_and_left_for_later(
    pool: db.Pool,
) -> None:
    t = await factories.tenant(pool)
    held, free = [await factories.submit(pool, t.id, queue="h") for _ in range(2)]
    async with pool.acquire() as other, other.transaction():
        await other.execute("SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE", held.id)
        done = await bulk.cancel(pool, tenant_id=t.id, where=Filter(queue="h"), limit=10)
        assert (done.changed, done.more) == (1, True)
        assert (await jobs.get(pool, job_id=free.id)).status is JobStatus.CANCELLED
    done = await bulk.cancel(pool, tenant_id=t.id, where=Filter(queue="h"), limit=10)
    assert (done.changed, done.more) == (1, False)
    assert (await jobs.get(pool, job_id=held.id)).status is JobStatus.CANCELLED
