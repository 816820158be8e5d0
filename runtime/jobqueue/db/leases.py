"""A worker's side of a job: lease, start, heartbeat, ack, fail, release.

A lease for free slots starts its jobs at once (`running`, one statement);
`start=False` leases them as `leased` for a caller that prefetches, and
`start()` later makes them running.

Every call after the lease names (job id, lease token) and its allowed
source states. A stale token changes nothing; the functions return what
they did change, so the caller can tell a lost lease from a done one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jobqueue.db import Executor, jsontext, queries, rows, translate
from jobqueue.models import JSON, JobId, Lease, LeaseToken, Transition, WorkerId

Q = queries.load("leases")


@translate
async def lease(
    conn: Executor,
    *,
    queue: str,
    worker_id: WorkerId,
    limit: int,
    lease_seconds: float,
    start: bool = True,
) -> list[Lease]:
    """Up to `limit` jobs of `queue`, fairly across tenants, within their
    quotas; running (started on the database clock) unless `start=False`."""
    status = "running" if start else "leased"
    found = await conn.fetch(Q["lease"], queue, worker_id, limit, lease_seconds, status)
    leases = [Lease(rows.job(r)) for r in found]
    leases.sort(key=lambda lease: (-lease.job.priority, lease.job.scheduled_at, lease.job.seq))
    return leases


# Batch statements below lock their jobs in the order of their arrays, so
# every batch goes in job-id order: a heartbeat and an ack of one worker in
# two orders deadlocked under load; one order leaves no circle to wait in.


def _ids_tokens(held: Sequence[tuple[JobId, LeaseToken]]) -> tuple[list[JobId], list[LeaseToken]]:
    ordered = sorted(held, key=lambda h: h[0])
    return [h[0] for h in ordered], [h[1] for h in ordered]


@translate
async def start(conn: Executor, *, held: Sequence[tuple[JobId, LeaseToken]]) -> set[JobId]:
    """leased -> running. Returns the ids whose lease was still valid."""
    ids, tokens = _ids_tokens(held)
    return {JobId(r["id"]) for r in await conn.fetch(Q["start"], ids, tokens)}


@translate
async def heartbeat(
    conn: Executor, *, held: Sequence[tuple[JobId, LeaseToken]], lease_seconds: float
) -> set[JobId]:
    """Extend all given leases in one statement; returns those still held."""
    if not held:
        return set()
    ids, tokens = _ids_tokens(held)
    found = await conn.fetch(Q["heartbeat"], ids, tokens, lease_seconds)
    return {JobId(r["id"]) for r in found}


@translate
async def ack(
    conn: Executor, *, done: Sequence[tuple[JobId, LeaseToken, JSON]]
) -> list[Transition]:
    """-> succeeded, for a batch. Missing from the result: lease lost.

    A result of None stores no result (NULL). Strings in results are made
    storable (`jsontext.storable`: NUL and lone surrogates become U+FFFD).
    """
    if not done:
        return []
    done = sorted(done, key=lambda d: d[0])
    results = [None if d[2] is None else jsontext.dumps_storable(d[2]) for d in done]
    found = await conn.fetch(Q["ack"], [d[0] for d in done], [d[1] for d in done], results)
    return [rows.transition(r) for r in found]


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed attempt: retry after `retry_in_seconds` (from the database
    clock), or the DLQ when attempts are exhausted or `permanent`.
    `max_attempts`, when given (a handler's retry policy), replaces the
    job's own from this failure on."""

    job_id: JobId
    token: LeaseToken
    error: str
    retry_in_seconds: float
    permanent: bool = False
    max_attempts: int | None = None


@translate
async def fail_many(conn: Executor, *, failed: Sequence[Failure]) -> list[Transition]:
    """-> queued or dlq, for a batch in one statement. Missing: lease lost.

    Errors are made storable (`jsontext.storable_text`: NUL and lone
    surrogates become U+FFFD) and cut to 4,000 characters."""
    if not failed:
        return []
    failed = sorted(failed, key=lambda f: f.job_id)
    found = await conn.fetch(
        Q["fail"],
        [f.job_id for f in failed],
        [f.token for f in failed],
        [jsontext.storable_text(f.error[:4000]) for f in failed],
        [f.retry_in_seconds for f in failed],
        [f.permanent for f in failed],
        [f.max_attempts for f in failed],
    )
    return [rows.transition(r) for r in found]


async def fail(
    conn: Executor,
    *,
    job_id: JobId,
    token: LeaseToken,
    error: str,
    retry_in_seconds: float,
    permanent: bool = False,
    max_attempts: int | None = None,
) -> Transition | None:
    """One failed attempt (see `fail_many`). None: the lease was lost."""
    done = await fail_many(conn, failed=[
        Failure(job_id, token, error, retry_in_seconds, permanent, max_attempts)
    ])
    return done[0] if done else None


@translate
async def snooze(
    conn: Executor, *, job_id: JobId, token: LeaseToken, seconds: float
) -> Transition | None:
    """-> queued at the database's now() + `seconds`, the attempt not burned.
    None: the lease was lost."""
    r = await conn.fetchrow(Q["snooze"], job_id, token, seconds)
    return rows.transition(r) if r else None


@translate
async def progress(
    conn: Executor, *, reports: Sequence[tuple[JobId, LeaseToken, float, str | None]]
) -> set[JobId]:
    """Store each held job's latest progress and notify watchers, in one
    statement. Returns the ids whose lease was still valid. The note is made
    storable and cut to 200 characters (the column's bound)."""
    if not reports:
        return set()
    reports = sorted(reports, key=lambda r: r[0])
    found = await conn.fetch(
        Q["progress"],
        [r[0] for r in reports],
        [r[1] for r in reports],
        [r[2] for r in reports],
        [None if r[3] is None else jsontext.storable_text(r[3][:200]) for r in reports],
    )
    return {JobId(r["id"]) for r in found}


@translate
async def release(conn: Executor, *, held: Sequence[tuple[JobId, LeaseToken]]) -> set[JobId]:
    """-> queued without burning the attempt (graceful stop)."""
    if not held:
        return set()
    ids, tokens = _ids_tokens(held)
    return {JobId(r["id"]) for r in await conn.fetch(Q["release"], ids, tokens)}
