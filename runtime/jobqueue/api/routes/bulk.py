"""Bulk actions on a filtered view: retry or cancel every matching job.

Bounded: one call changes at most `limit` jobs (1,000) and answers `more`
while matching jobs remain, so a client (the web UI) calls again until it
is false. Scoped like every job route: a tenant's call reaches only its own
jobs; the admin's reaches every tenant's.
"""

from __future__ import annotations

from fastapi import APIRouter

from jobqueue.api.dashboard_schemas import BulkIn, BulkOut, BulkRetryIn
from jobqueue.api.deps import AccessDep, RuntimeDep
from jobqueue.api.routes import docs
from jobqueue.db import bulk, listing
from jobqueue.observability import metrics

router = APIRouter(tags=["jobs"])


def _filter(body: BulkIn) -> listing.Filter:
    return listing.Filter(
        status=body.status,
        queue=body.queue,
        type=body.type,
        created_after=body.created_after,
        created_before=body.created_before,
    )


@router.post(
    "/v1/jobs/retry",
    response_model=BulkOut,
    summary="Queue again the dead-lettered or cancelled jobs that match a filter",
    description=(
        "At most `limit` jobs per call, oldest first; call again while `more` is true. "
        "Jobs in other states are left alone; `status`, if given, must be dlq or cancelled."
    ),
    responses=docs.errors(*docs.COMMON),
)
async def retry_matching(body: BulkRetryIn, access: AccessDep, rt: RuntimeDep) -> BulkOut:
    async with rt.deadline():
        done = await bulk.retry(
            rt.pool,
            tenant_id=access.scope,
            where=_filter(body),
            limit=body.limit,
            reset_attempts=body.reset_attempts,
        )
    return BulkOut(changed=done.changed, more=done.more)


@router.post(
    "/v1/jobs/cancel",
    response_model=BulkOut,
    summary="Cancel the unfinished jobs that match a filter",
    description=(
        "At most `limit` jobs per call, oldest first; call again while `more` is true. "
        "Workers holding one lose its lease. `status`, if given, must be queued, leased "
        "or running."
    ),
    responses=docs.errors(*docs.COMMON),
)
async def cancel_matching(body: BulkIn, access: AccessDep, rt: RuntimeDep) -> BulkOut:
    async with rt.deadline():
        done = await bulk.cancel(
            rt.pool, tenant_id=access.scope, where=_filter(body), limit=body.limit
        )
    for tenant_id, n in done.by_tenant.items():
        metrics.JOBS_COMPLETED.labels(tenant_id, "cancelled").inc(n)
    return BulkOut(changed=done.changed, more=done.more)
