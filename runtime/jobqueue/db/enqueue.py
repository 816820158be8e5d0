"""Enqueue a job inside the caller's own database transaction.

For applications that share jobqueue's database: the job is written by the
same transaction as the application's own rows, so it exists if and only
if that transaction commits (no job for a rolled-back order, no order
without its job), and workers hear of it at commit::

    import asyncpg
    import jobqueue

    async with conn.transaction():
        await conn.execute("INSERT INTO orders ...")
        await jobqueue.enqueue(conn, tenant_id="acme", type="send-receipt",
                               data={"order": 42}, idempotency_key="receipt-42")

`conn` is any asyncpg connection (jobqueue's json codecs are not needed;
values travel as text). The checks are the API's (names, bounds, nesting,
idempotency: the same key and request give the first job's id back, a
different request raises IdempotencyConflict). What the API adds is not
applied here: tenant rate limits and the max_queued backlog cap, since the
caller is trusted code with database credentials. An error aborts the
caller's transaction, as any failed statement does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jobqueue import errors, idempotency, validation
from jobqueue.db import Executor, jsontext, queries, translate
from jobqueue.models import JSON, JobId, NewJob, Priority

Q = queries.load("enqueue")


@dataclass(frozen=True, slots=True)
class Enqueued:
    job_id: JobId
    replayed: bool  # the key was used before by the same request: that job


@translate
async def enqueue(
    conn: Executor,
    *,
    tenant_id: str,
    type: str,
    data: JSON = None,
    queue: str = "default",
    priority: str | int = "normal",
    max_attempts: int | None = None,
    timeout_seconds: int = 300,
    run_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> Enqueued:
    """Insert one job on `conn`, in whatever transaction it has open."""
    try:
        level = Priority.parse(priority)
    except ValueError as exc:
        raise errors.InvalidInput(str(exc)) from None
    job = NewJob(
        type=type, data={} if data is None else data, queue=queue, priority=level,
        max_attempts=max_attempts, timeout_seconds=timeout_seconds, run_at=run_at,
        idempotency_key=idempotency_key,
    )
    if (problem := validation.tenant_id_problem(tenant_id)) is not None:
        raise errors.InvalidInput(problem)
    validation.check_new_job(job)
    fp = idempotency.fingerprint(job)
    args = (
        tenant_id, job.queue, job.type, jsontext.dumps(job.data), int(job.priority),
        job.max_attempts, job.timeout_seconds, job.idempotency_key, fp, job.run_at,
    )
    # As in jobs.submit: a key whose first insert committed after this
    # statement's snapshot is seen by the next statement.
    for _ in range(3):
        r = await conn.fetchrow(Q["enqueue"], *args)
        if r is None:
            continue
        if not r["inserted"] and not idempotency.matches(r["request_fingerprint"], job, fp):
            assert job.idempotency_key is not None
            raise errors.IdempotencyConflict(job.idempotency_key, JobId(r["id"]))
        return Enqueued(job_id=JobId(r["id"]), replayed=not r["inserted"])
    raise errors.DatabaseUnavailable("idempotent enqueue did not settle after 3 tries")

