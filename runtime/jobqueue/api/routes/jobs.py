"""Job routes: submit (one or a batch), read, list, retry, cancel, stats.

Every query is scoped to the caller's tenant (from the token); another
tenant's job is a 404, exactly like a job that does not exist, so ids do
not leak. The admin credential reads and changes jobs of every tenant but
submits only through a tenant token (a job needs an owner).
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Request, Response

from jobqueue import errors
from jobqueue.api import cursor, http_errors
from jobqueue.api.deps import Access, AccessDep, RuntimeDep
from jobqueue.api.routes import docs
from jobqueue.api.schemas import (
    KEY_PATTERN,
    QUEUE_PATTERN,
    TYPE_PATTERN,
    BatchIn,
    BatchItemOut,
    BatchOut,
    DepthOut,
    ErrorOut,
    JobIn,
    JobOut,
    JobPage,
    RetryIn,
    StatsOut,
    WireDatetime,
)
from jobqueue.db import jobs, listing, stats
from jobqueue.models import JobId, JobStatus, NewJob, Submitted, Tenant
from jobqueue.observability import metrics, tracing

router = APIRouter(tags=["jobs"])

IdempotencyKeyHeader = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=KEY_PATTERN,
        description="the same key and request give the same job, exactly once",
    ),
]
_REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true`: this key was submitted before; this is that job",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Unique-Duplicate": {
        "description": "`true`: a unique job duplicated this one; this is that job",
        "schema": {"type": "string", "enum": ["true"]},
    },
}


def _or_empty(pattern: str) -> str:
    return f"^$|{pattern}"


def _tenant(access: Access) -> Tenant:
    if access.tenant is None:
        raise http_errors.forbidden(
            "the admin credential cannot own jobs; get a tenant token at POST /auth/token"
        )
    return access.tenant


# Built once: json.dumps with options builds a new encoder per call, a
# noticeable share of a 1,000-job batch.
_COMPACT = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _check_payload(data: Any, limit: int, where: str = "data") -> None:
    try:
        size = len(_COMPACT.encode(data).encode())
    except (ValueError, UnicodeEncodeError, RecursionError) as exc:
        raise errors.InvalidJob(f"{where} is not storable JSON: {exc}") from None
    if size > limit:
        raise http_errors.too_large(f"{where} is {size} bytes; the limit is {limit}")


def _new_job(body: JobIn, key: str, carrier: dict[str, str]) -> NewJob:
    return NewJob(
        type=body.type,
        data=body.data,
        queue=body.queue,
        priority=body.priority_value(),
        max_attempts=body.max_attempts,
        timeout_seconds=body.timeout_seconds,
        run_at=body.run_at,
        idempotency_key=key,
        trace_context=carrier or None,
        unique=body.unique.to_model() if body.unique is not None else None,
    )


def _incoming_trace(request: Request) -> dict[str, str] | None:
    """A caller's W3C trace context, so submit_job joins the caller's trace."""
    parent = request.headers.get("traceparent")
    if parent is None:
        return None
    carrier = {"traceparent": parent}
    if state := request.headers.get("tracestate"):
        carrier["tracestate"] = state
    return carrier


def _count(tenant: Tenant, submitted: Submitted) -> None:
    if not submitted.replayed and not submitted.duplicate:
        metrics.JOBS_SUBMITTED.labels(tenant.id, submitted.job.priority.name.lower()).inc()


def _count_batch(tenant: Tenant, results: list[Submitted | errors.IdempotencyConflict]) -> None:
    # One labels() lookup per priority, not per job.
    made = Counter(
        r.job.priority for r in results if isinstance(r, Submitted) and not r.replayed
    )
    for priority, n in made.items():
        metrics.JOBS_SUBMITTED.labels(tenant.id, priority.name.lower()).inc(n)


@router.post(
    "/v1/jobs",
    status_code=201,
    response_model=JobOut,
    summary="Submit a job",
    responses={
        200: {"model": JobOut, "description": "replay of an earlier request, or a unique "
              "job's duplicate", "headers": _REPLAYED},
        **docs.errors(*docs.COMMON, 409, 413),
    },
)
async def submit(
    body: JobIn,
    idempotency_key: IdempotencyKeyHeader,
    access: AccessDep,
    rt: RuntimeDep,
    request: Request,
    response: Response,
) -> JobOut:
    tenant = _tenant(access)
    _check_payload(body.data, rt.settings.max_payload_bytes)
    attrs = {"tenant_id": tenant.id, "queue": body.queue, "type": body.type}
    with tracing.span("submit_job", parent=_incoming_trace(request), attributes=attrs) as span:
        job = _new_job(body, idempotency_key, tracing.inject())
        exact = rt.backlog.must_check(tenant.id, tenant.max_queued)
        max_queued = tenant.max_queued if exact else None
        async with rt.deadline():
            submitted = await jobs.submit(
                rt.pool, tenant_id=tenant.id, job=job, max_queued=max_queued
            )
        span.set_attribute("job_id", str(submitted.job.id))
    if submitted.replayed:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    elif submitted.duplicate:
        response.status_code = 200
        response.headers["Unique-Duplicate"] = "true"
    else:
        rt.backlog.accepted(tenant.id, 1)
    _count(tenant, submitted)
    return JobOut.of(submitted.job)


@router.post(
    "/v1/jobs/batch",
    response_model=BatchOut,
    summary="Submit up to batch_max jobs in one transaction",
    description=(
        "Each job carries its own idempotency key; results come back in input order. "
        "A batch counts as one request against the rate limit."
    ),
    responses=docs.errors(*docs.COMMON, 413),
)
async def submit_batch(
    body: BatchIn, access: AccessDep, rt: RuntimeDep, request: Request
) -> BatchOut:
    tenant = _tenant(access)
    if len(body.jobs) > rt.settings.batch_max:
        raise http_errors.too_large(
            f"batch of {len(body.jobs)} jobs; the limit is {rt.settings.batch_max}"
        )
    for i, item in enumerate(body.jobs):
        _check_payload(item.data, rt.settings.max_payload_bytes, f"jobs[{i}].data")
    incoming = _incoming_trace(request)
    attrs: dict[str, str | int] = {"tenant_id": tenant.id, "batch_size": len(body.jobs)}
    with (
        tracing.span("submit_batch", parent=incoming, attributes=attrs),
        tracing.job_spans(len(body.jobs), parent=incoming,
                          attributes={"tenant_id": tenant.id}) as spans,
    ):
        new = [
            _new_job(item, item.idempotency_key, carrier)
            for item, carrier in zip(body.jobs, spans.carriers, strict=True)
        ]
        async with rt.deadline():
            if rt.backlog.must_check(tenant.id, tenant.max_queued, adding=len(new)):
                queued = sum(
                    r.jobs
                    for r in await stats.depth(rt.pool, tenant_id=tenant.id)
                    if r.status == JobStatus.QUEUED
                )
                if queued + len(new) > tenant.max_queued:
                    raise errors.QuotaExceeded(
                        f"tenant {tenant.id} has {queued} queued jobs; {len(new)} more would "
                        f"pass its limit of {tenant.max_queued}",
                        retry_after=5.0,
                    )
            results = await jobs.submit_many(rt.pool, tenant_id=tenant.id, jobs=new)
        spans.name([r.job.id if isinstance(r, Submitted) else None for r in results])
    out: list[BatchItemOut] = []
    for i, r in enumerate(results):
        if isinstance(r, errors.IdempotencyConflict):
            err = ErrorOut(error="idempotency_conflict", detail=str(r))
            out.append(BatchItemOut(index=i, outcome="conflict", error=err))
            continue
        outcome = "replayed" if r.replayed else "created"
        out.append(BatchItemOut(index=i, outcome=outcome, job=JobOut.of(r.job)))
    _count_batch(tenant, results)
    created = sum(1 for o in out if o.outcome == "created")
    rt.backlog.accepted(tenant.id, created)
    return BatchOut(
        results=out,
        created=created,
        replayed=sum(1 for o in out if o.outcome == "replayed"),
        conflicts=sum(1 for o in out if o.outcome == "conflict"),
    )


@router.get(
    "/v1/jobs/{job_id}",
    response_model=JobOut,
    summary="Read a job",
    responses=docs.errors(*docs.COMMON, 404),
)
async def get_job(job_id: uuid.UUID, access: AccessDep, rt: RuntimeDep) -> JobOut:
    async with rt.deadline():
        job = await jobs.get(rt.pool, job_id=JobId(job_id), tenant_id=access.scope)
    return JobOut.of(job)


@router.get(
    "/v1/jobs",
    response_model=JobPage,
    summary="List jobs, newest first",
    description=(
        "A stable order (creation time, then submission order). Page with `after`: "
        "pass the previous page's `next` to get the page after it, at the same cost "
        "however deep (`page` numbers still work but read every earlier page). "
        f"`total` is exact up to {listing.COUNT_CAP:,} matches; past that it is "
        f"{listing.COUNT_CAP:,} with `total_exact` false (at least that many). "
        "`created_after` (inclusive) and `created_before` bound the creation time."
    ),
    responses=docs.errors(*docs.COMMON, 400),
)
async def list_jobs(
    access: AccessDep,
    rt: RuntimeDep,
    # An empty value (`?status=&queue=`) means no filter, as if absent.
    status: Annotated[JobStatus | Literal[""] | None, Query()] = None,
    queue: Annotated[str | None, Query(pattern=_or_empty(QUEUE_PATTERN))] = None,
    type: Annotated[str | None, Query(pattern=_or_empty(TYPE_PATTERN))] = None,
    created_after: Annotated[WireDatetime | None, Query()] = None,
    created_before: Annotated[WireDatetime | None, Query()] = None,
    after: Annotated[
        str | None, Query(description="the `next` of the previous page (opaque)")
    ] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> JobPage:
    where = listing.Filter(
        status=status or None,
        queue=queue or None,
        type=type or None,
        created_after=created_after,
        created_before=created_before,
    )
    try:
        start = cursor.decode(after) if after else None
    except cursor.InvalidCursor as exc:
        raise http_errors.HttpError(400, "invalid_cursor", str(exc)) from None
    async with rt.deadline():
        found = await listing.page(
            rt.pool,
            tenant_id=access.scope,
            where=where,
            after=start,
            page=page,
            page_size=page_size,
        )
    return JobPage(
        jobs=[JobOut.of(j) for j in found.jobs],
        total=found.total,
        total_exact=found.total_exact,
        page=found.page,
        page_size=found.page_size,
        next=cursor.encode(found.next) if found.next else None,
    )


@router.post(
    "/v1/jobs/{job_id}/retry",
    response_model=JobOut,
    summary="Queue a dead-lettered or cancelled job again",
    responses=docs.errors(*docs.COMMON, 404, 409),
)
async def retry_job(
    job_id: uuid.UUID,
    access: AccessDep,
    rt: RuntimeDep,
    body: Annotated[RetryIn | None, Body()] = None,
) -> JobOut:
    reset = body.reset_attempts if body is not None else False
    async with rt.deadline():
        job = await jobs.retry(
            rt.pool, job_id=JobId(job_id), tenant_id=access.scope, reset_attempts=reset
        )
    return JobOut.of(job)


@router.post(
    "/v1/jobs/{job_id}/cancel",
    response_model=JobOut,
    summary="Cancel a job that has not finished",
    responses=docs.errors(*docs.COMMON, 404, 409),
)
async def cancel_job(job_id: uuid.UUID, access: AccessDep, rt: RuntimeDep) -> JobOut:
    async with rt.deadline():
        job = await jobs.cancel(rt.pool, job_id=JobId(job_id), tenant_id=access.scope)
    # Exactly once: the transition succeeds only from an unfinished state.
    metrics.JOBS_COMPLETED.labels(job.tenant_id, job.status.value).inc()
    return JobOut.of(job)


@router.get(
    "/v1/stats",
    response_model=StatsOut,
    summary="Queue depth by queue and status, and the oldest ready job's age",
    responses=docs.errors(*docs.COMMON),
)
async def get_stats(access: AccessDep, rt: RuntimeDep) -> StatsOut:
    async with rt.deadline():
        rows = await stats.depth(rt.pool, tenant_id=access.scope)
    ages = [r.oldest_ready_age_seconds for r in rows if r.oldest_ready_age_seconds is not None]
    return StatsOut(
        depth=[DepthOut.of(r) for r in rows],
        oldest_queued_age_seconds=max(ages) if ages else None,
    )
