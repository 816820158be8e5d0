"""Jobs as clients see them: submit, read, list, cancel, retry."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from jobqueue import errors, idempotency, unique, validation
from jobqueue.db import Executor, Record, history, jsontext, listing, queries, rows, translate
from jobqueue.models import Job, JobId, JobStatus, NewJob, Page, Submitted, TenantId

Q = queries.load("jobs")


def _check_replay(existing: Job, existing_fp: str | None, new: NewJob, new_fp: str) -> Submitted:
    if not idempotency.matches(existing_fp, new, new_fp):
        assert new.idempotency_key is not None
        raise errors.IdempotencyConflict(new.idempotency_key, existing.id)
    return Submitted(job=existing, replayed=True)


@translate
async def submit(
    conn: Executor, *, tenant_id: TenantId, job: NewJob, max_queued: int | None = None
) -> Submitted:
    """Submit one job, exactly once per (tenant, idempotency key).

    Same key and same request: the existing job, `replayed=True`. Same key,
    different request: IdempotencyConflict. `max_queued`, when given, refuses
    a new job while the tenant's backlog is full (a soft limit: concurrent
    submits may pass it by their number).
    """
    validation.check_new_job(job, strict_names=False)
    fp = idempotency.fingerprint(job)
    if max_queued is not None and await conn.fetchval(Q["backlog_at_least"], tenant_id, max_queued):
        # A replay of an accepted request is still answered when the backlog is full.
        if job.idempotency_key is not None:
            found = await conn.fetch(Q["find_by_keys"], tenant_id, [job.idempotency_key])
            if found:
                return _check_replay(
                    rows.job(found[0]), found[0]["request_fingerprint"], job, fp
                )
        raise errors.QuotaExceeded(
            f"tenant {tenant_id} already has {max_queued} queued jobs", retry_after=5.0
        )
    if job.unique is not None:
        return await _submit_unique(conn, tenant_id=tenant_id, job=job, fp=fp)
    args = (
        tenant_id,
        job.queue,
        job.type,
        job.data,
        int(job.priority),
        job.max_attempts,
        job.timeout_seconds,
        job.idempotency_key,
        fp,
        job.run_at,
        job.trace_context,
    )
    for _ in range(3):
        r = await conn.fetchrow(Q["submit"], *args)
        if r is None:
            # The key's first insert committed after this statement's
            # snapshot was taken; a new statement sees it.
            continue
        if r["inserted"]:
            return Submitted(job=rows.job(r), replayed=False)
        return _check_replay(rows.job(r), r["request_fingerprint"], job, fp)
    raise errors.DatabaseUnavailable("idempotent submit did not settle after 3 tries")


async def _submit_unique(
    conn: Executor, *, tenant_id: TenantId, job: NewJob, fp: str
) -> Submitted:
    # The id is chosen here so the one returned row tells the outcomes apart.
    new_id = uuid.uuid4()
    assert job.unique is not None
    period = job.unique.period_seconds
    r = await conn.fetchrow(
        Q["submit_unique"], new_id, tenant_id, job.queue, job.type, job.data,
        int(job.priority), job.max_attempts, job.timeout_seconds, job.idempotency_key, fp,
        job.run_at, job.trace_context, unique.key(job),
        None if period is None else float(period), unique.states(job),
    )
    if r is None:
        raise errors.DatabaseUnavailable("unique submit returned nothing")
    if r["id"] == new_id:
        return Submitted(job=rows.job(r), replayed=False)
    if job.idempotency_key is not None and r["idempotency_key"] == job.idempotency_key:
        return _check_replay(rows.job(r), r["request_fingerprint"], job, fp)
    return Submitted(job=rows.job(r), replayed=False, duplicate=True)


@translate
async def submit_many(
    conn: Executor, *, tenant_id: TenantId, jobs: Sequence[NewJob]
) -> list[Submitted | errors.IdempotencyConflict]:
    """Submit a batch in one statement; one result per input, in order.

    Items whose key was used before (or earlier in the same batch) come back
    as replays, or as an IdempotencyConflict in their slot; the others are
    inserted. The caller's transaction decides whether it is all-or-nothing.
    """
    if not jobs:
        return []
    validation.check_new_jobs(jobs, strict_names=False)
    if any(j.unique is not None for j in jobs):
        # Each needs its own lock and check; one at a time keeps them exact.
        raise errors.InvalidInput("unique jobs cannot be submitted in a batch; submit each alone")
    # Only a key is ever compared with its fingerprint: a keyless job of a
    # batch stores none and skips the canonical encoding and the hash.
    fps = [None if j.idempotency_key is None else idempotency.fingerprint(j) for j in jobs]
    inserted = await conn.fetch(
        Q["submit_many"],
        tenant_id,
        [j.queue for j in jobs],
        [j.type for j in jobs],
        [jsontext.dumps(j.data) for j in jobs],
        [int(j.priority) for j in jobs],
        [j.max_attempts for j in jobs],
        [j.timeout_seconds for j in jobs],
        [j.idempotency_key for j in jobs],
        fps,
        [j.run_at for j in jobs],
        [j.trace_context for j in jobs],
    )
    new_by_key = {r["idempotency_key"]: r for r in inserted if r["idempotency_key"] is not None}
    keyless = iter([r for r in inserted if r["idempotency_key"] is None])
    existing = await _existing(conn, tenant_id, jobs, new_by_key)
    out: list[Submitted | errors.IdempotencyConflict] = []
    made: dict[str, Job] = {}  # the jobs this batch inserted, by key
    for j, fp in zip(jobs, fps, strict=True):
        key = j.idempotency_key
        if key is None:
            out.append(Submitted(job=rows.inserted(next(keyless), tenant_id, j), replayed=False))
        elif key in new_by_key and key not in made:
            # The first item with a key is the one inserted (input order).
            made[key] = rows.inserted(new_by_key[key], tenant_id, j)
            out.append(Submitted(job=made[key], replayed=False))
        else:
            assert fp is not None
            out.append(_replay(key, new_by_key, made, existing, j, fp))
    return out


async def _existing(
    conn: Executor, tenant_id: TenantId, jobs: Sequence[NewJob], new_by_key: dict[str, Record]
) -> dict[str, Record]:
    """The stored rows of the batch's keys that it did not insert."""
    lookups = {j.idempotency_key for j in jobs if j.idempotency_key is not None}
    lookups -= new_by_key.keys()
    existing: dict[str, Record] = {}
    for _ in range(3 if lookups else 0):
        # A key whose first insert committed after the batch's snapshot is
        # seen by the next statement.
        existing = {
            r["idempotency_key"]: r
            for r in await conn.fetch(Q["find_by_keys"], tenant_id, list(lookups))
        }
        if len(existing) == len(lookups):
            break
    return existing


def _replay(
    key: str,
    new_by_key: dict[str, Record],
    made: dict[str, Job],
    existing: dict[str, Record],
    job: NewJob,
    fp: str,
) -> Submitted | errors.IdempotencyConflict:
    """A keyed item that was not inserted: the replay of the job its key
    has (made earlier in this batch, or before it), or a conflict with it."""
    if key in made:
        found, stored_fp = made[key], new_by_key[key]["request_fingerprint"]
    elif (r := existing.get(key)) is not None:
        found, stored_fp = rows.job(r), r["request_fingerprint"]
    else:
        raise errors.DatabaseUnavailable(f"idempotency key {key!r} did not settle")
    try:
        return _check_replay(found, stored_fp, job, fp)
    except errors.IdempotencyConflict as exc:
        return exc


@translate
async def get(conn: Executor, *, job_id: JobId, tenant_id: TenantId | None = None) -> Job:
    """The job, if it exists and (when `tenant_id` is given) is that tenant's,
    in the hot table or in history."""
    r = await conn.fetchrow(Q["get"], job_id, tenant_id)
    if r is None:
        r = await conn.fetchrow(Q["get_anywhere"], job_id, tenant_id)
    if r is None:
        raise errors.JobNotFound(f"job {job_id} not found")
    return rows.job(r)


async def list_jobs(
    conn: Executor,
    *,
    tenant_id: TenantId | None,
    status: JobStatus | None = None,
    queue: str | None = None,
    type: str | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page:
    """Newest first, in a stable order; `total` is a capped count (db.listing)."""
    return await listing.page(
        conn,
        tenant_id=tenant_id,
        where=listing.Filter(status=status, queue=queue, type=type),
        page=page,
        page_size=page_size,
    )


@translate
async def cancel(conn: Executor, *, job_id: JobId, tenant_id: TenantId | None = None) -> Job:
    """queued|leased|running -> cancelled. A worker holding it loses its lease."""
    r = await conn.fetchrow(Q["cancel"], [job_id], tenant_id)
    if r is None:
        current = await get(conn, job_id=job_id, tenant_id=tenant_id)
        raise errors.InvalidTransition(f"job {job_id} is {current.status}; it cannot be cancelled")
    return rows.job(r)


@translate
async def retry(
    conn: Executor,
    *,
    job_id: JobId,
    tenant_id: TenantId | None = None,
    reset_attempts: bool = False,
) -> Job:
    """dlq|cancelled -> queued, now. Without a reset the job gets one more attempt."""
    r = await conn.fetchrow(Q["retry"], [job_id], tenant_id, reset_attempts)
    if r is None:
        archived = await history.retry_archived(
            conn, job_id=job_id, tenant_id=tenant_id, reset_attempts=reset_attempts
        )
        if archived is not None:
            return archived
        current = await get(conn, job_id=job_id, tenant_id=tenant_id)
        raise errors.InvalidTransition(
            f"job {job_id} is {current.status}; only dlq or cancelled jobs can be retried"
        )
    return rows.job(r)
