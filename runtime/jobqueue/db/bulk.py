"""Retry or cancel every job of a filtered view, a bounded batch at a time.

Each call changes at most `limit` jobs in one statement (oldest first) and
says whether more remain, so a caller loops instead of one request locking
a million rows. Jobs a worker holds at that moment are skipped, not waited
for; the next call finds them. The transitions are those of `jobs.retry`
and `jobs.cancel`, from the same source states.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from jobqueue import errors
from jobqueue.db import Executor, queries, translate
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
    conn: Executor, change: str, probe: str, tenant_id: TenantId | None, where: Filter,
    *extra: object,
) -> BulkResult:
    found = await conn.fetch(Q[change], tenant_id, *where.args(), *extra)
    more = bool(await conn.fetchval(Q[probe], tenant_id, *where.args()))
    by_tenant = Counter(TenantId(r["tenant_id"]) for r in found)
    return BulkResult(by_tenant=dict(by_tenant), more=more)


@translate
async def retry(
    conn: Executor,
    *,
    tenant_id: TenantId | None,
    where: Filter,
    limit: int = MAX_LIMIT,
    reset_attempts: bool = False,
) -> BulkResult:
    """Up to `limit` dlq|cancelled jobs matching `where` -> queued."""
    _check(where, limit, RETRYABLE, "retried")
    return await _run(conn, "retry_matching", "any_retryable", tenant_id, where, limit,
                      reset_attempts)


@translate
async def cancel(
    conn: Executor, *, tenant_id: TenantId | None, where: Filter, limit: int = MAX_LIMIT
) -> BulkResult:
    """Up to `limit` queued|leased|running jobs matching `where` -> cancelled."""
    _check(where, limit, CANCELLABLE, "cancelled")
    return await _run(conn, "cancel_matching", "any_cancellable", tenant_id, where, limit)
