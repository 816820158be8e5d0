"""Retry or cancel every job of a filtered view, a bounded batch at a time.

Each call changes at most `limit` jobs (oldest first) in one transaction:
one statement locks the batch (db/sql/bulk.sql), then the statement of
`jobs.retry` or `jobs.cancel` changes it, so the transitions are written
once. It says whether more remain, so a caller loops instead of one request
locking a million rows. Jobs a worker holds at that moment are skipped, not
waited for; the next call finds them. Retry takes the jobs in history too,
after the hot table's (db/history.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from jobqueue import errors
from jobqueue.db import Pool, history, jobs, queries, translate
from jobqueue.db.listing import Filter
from jobqueue.models import JobStatus, TenantId

Q = queries.load("bulk")

MAX_LIMIT = 1000
RETRYABLE = frozenset({JobStatus.DLQ, JobStatus.CANCELLED})
CANCELLABLE = frozenset({JobStatus.QUEUED, JobStatus.LEASED, JobStatus.RUNNING})


@dataclass(frozen=True, slots=True)
class BulkResult:
    # Jobs changed, by tenant (the admin's call may span tenants).
    by_tenant: dict[TenantId, int]
    more: bool

    @property
    def changed(self) -> int:
        return sum(self.by_tenant.values())


def _check(where: Filter, limit: int, allowed: frozenset[JobStatus], verb: str) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise errors.InvalidInput(f"limit must be between 1 and {MAX_LIMIT}")
    if where.status is not None and where.status not in allowed:
        names = " or ".join(sorted(s.value for s in allowed))
        raise errors.InvalidInput(f"only {names} jobs can be {verb}, not {where.status.value}")


async def _run(
    pool: Pool, change: str, allowed: frozenset[JobStatus], tenant_id: TenantId | None,
    where: Filter, limit: int, *extra: object,
) -> BulkResult:
    states = sorted(s.value for s in allowed)
    async with pool.acquire() as conn, conn.transaction():
        picked = await conn.fetchrow(Q["pick_matching"], tenant_id, *where.args(), states, limit)
        found = await conn.fetch(jobs.Q[change], picked["ids"], tenant_id, *extra)
    by_tenant = Counter(TenantId(r["tenant_id"]) for r in found)
    return BulkResult(by_tenant=dict(by_tenant), more=picked["matching"] > len(found))


@translate
async def retry(
    pool: Pool,
    *,
    tenant_id: TenantId | None,
    where: Filter,
    limit: int = MAX_LIMIT,
    reset_attempts: bool = False,
) -> BulkResult:
    """Up to `limit` dlq|cancelled jobs matching `where` -> queued: those in
    the hot table first, then those in history (moved back)."""
    _check(where, limit, RETRYABLE, "retried")
    hot = await _run(pool, "retry", RETRYABLE, tenant_id, where, limit, reset_attempts)
    async with pool.acquire() as conn, conn.transaction():
        rest = limit - hot.changed  # 0 still counts whether history holds more
        picked = await conn.fetchrow(Q["pick_archived"], tenant_id, *where.args(), rest)
        found = (await conn.fetch(history.Q["retry_archived"], picked["ids"], tenant_id,
                                  reset_attempts)) if picked["ids"] else []
    both = Counter(hot.by_tenant) + Counter(TenantId(r["tenant_id"]) for r in found)
    return BulkResult(by_tenant=dict(both),
                      more=hot.more or picked["matching"] > len(found))


@translate
async def cancel(
    pool: Pool, *, tenant_id: TenantId | None, where: Filter, limit: int = MAX_LIMIT
) -> BulkResult:
    """Up to `limit` queued|leased|running jobs matching `where` -> cancelled."""
    _check(where, limit, CANCELLABLE, "cancelled")
    return await _run(pool, "cancel", CANCELLABLE, tenant_id, where, limit)
