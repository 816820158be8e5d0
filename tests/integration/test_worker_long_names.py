"""Issue 9, defect 1, as a worker meets it: the longest valid tenant and
queue names must not stop a queue. With 80 job rows per NOTIFY whatever
their size, a worker's first lease of 100 such jobs aborted and the worker
crash-looped; the statement-level unit tests are in db/test_notify_size.py."""

from __future__ import annotations

from jobqueue import db
from jobqueue.models import JobId, JobStatus, TenantId
from tests import factories
from tests.support.worker import registry_with, running, settled, submit


async def test_a_worker_drains_100_jobs_a_lease_of_the_longest_names(
    dsn: str, pool: db.Pool
) -> None:
    tenant = TenantId("a" * 62 + "z")
    await factories.tenant(pool, tenant, max_concurrent=1000)
    queue = "\N{GRINNING FACE}" * 63  # 252 bytes of UTF-8
    ids: list[JobId] = []
    for _ in range(30):  # batches of 10: the submission is not under test here
        ids += await submit(pool, tenant, 10, queue=queue)
    async with running(dsn, registry_with(), queue=queue, concurrency=100):
        done = await settled(pool, ids)
    assert {j.status for j in done} == {JobStatus.SUCCEEDED}
    assert {j.attempt for j in done} == {1}
