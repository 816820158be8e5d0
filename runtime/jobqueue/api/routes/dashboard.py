"""What the web UI reads besides jobs: the overview per queue, and the
admin's views of tenants and queues.

The overview is scoped like every job route: a tenant sees the queues it
has jobs in, counted over its own jobs only; the admin sees everything.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from jobqueue.api.dashboard_schemas import (
    MinuteOut,
    OverviewOut,
    QueueInfoOut,
    QueueOverviewOut,
    QueuesOut,
    ReplicasOut,
    TenantsOut,
    TenantStateOut,
    UsageOut,
)
from jobqueue.api.deps import AccessDep, AdminDep, RuntimeDep
from jobqueue.api.routes import docs
from jobqueue.db import dashboard, queues, stats
from jobqueue.models import DepthRow, JobStatus

router = APIRouter(tags=["dashboard"])

_UNFINISHED = (JobStatus.QUEUED, JobStatus.LEASED, JobStatus.RUNNING, JobStatus.DLQ)


def _series(tp: dashboard.Throughput, queue: str, minutes: int) -> list[MinuteOut]:
    """One entry per minute, oldest first, zeros where nothing finished."""
    by_minute = {tp.minute - timedelta(minutes=k): MinuteOut(
        minute=tp.minute - timedelta(minutes=k)) for k in range(minutes - 1, -1, -1)}
    for f in tp.rows:
        slot = by_minute.get(f.minute)
        if f.queue == queue and slot is not None:
            setattr(slot, f.status.value, getattr(slot, f.status.value) + f.jobs)
    return list(by_minute.values())


def _queue(
    name: str,
    depth: list[DepthRow],
    tp: dashboard.Throughput,
    minutes: int,
    busy: dict[str, int],
    pods: dict[str, dashboard.Replicas],
) -> QueueOverviewOut:
    jobs = {s.value: 0 for s in _UNFINISHED}
    ages: list[float] = []
    for r in depth:
        if r.queue == name:
            jobs[r.status.value] += r.jobs
            if r.oldest_ready_age_seconds is not None:
                ages.append(r.oldest_ready_age_seconds)
    return QueueOverviewOut(
        queue=name,
        jobs=jobs,
        oldest_queued_age_seconds=max(ages) if ages else None,
        busy_workers=busy.get(name, 0),
        throughput=_series(tp, name, minutes),
        **ReplicasOut.fields_of(pods.get(name)),
    )


@router.get(
    "/v1/overview",
    response_model=OverviewOut,
    summary="Per queue: jobs by status, throughput per minute, oldest ready age, workers",
    description=(
        "Counts cover the caller's jobs (the admin's: everyone's). Throughput is jobs "
        "finished per minute over the last `minutes` minutes, by outcome. Replicas are "
        "the worker pods the operator last reported, null where it does not run the queue."
    ),
    responses=docs.errors(*docs.COMMON),
)
async def overview(
    access: AccessDep,
    rt: RuntimeDep,
    minutes: Annotated[int, Query(ge=1, le=dashboard.MAX_MINUTES)] = 15,
) -> OverviewOut:
    async with rt.deadline():
        depth = await stats.depth(rt.pool, tenant_id=access.scope)
        tp = await dashboard.throughput(rt.pool, tenant_id=access.scope, minutes=minutes)
        busy = await dashboard.busy_workers(rt.pool, tenant_id=access.scope)
        pods = await dashboard.replicas(rt.pool)
    names = sorted({r.queue for r in depth} | {f.queue for f in tp.rows})
    return OverviewOut(
        minutes=minutes,
        now=tp.now,
        queues=[_queue(n, depth, tp, minutes, busy, pods) for n in names],
    )


def _usage(depth: list[DepthRow]) -> dict[str, UsageOut]:
    out: dict[str, UsageOut] = {}
    for r in depth:
        u = out.setdefault(r.tenant_id, UsageOut())
        if r.status is JobStatus.QUEUED:
            u.queued += r.jobs
        elif r.status is JobStatus.DLQ:
            u.dlq += r.jobs
        else:
            u.active += r.jobs
    return out


@router.get(
    "/v1/admin/tenants",
    response_model=TenantsOut,
    summary="Every tenant: quotas, current usage and rate-limit state (admin only)",
    responses=docs.errors(*docs.COMMON),
)
async def admin_tenants(_: AdminDep, rt: RuntimeDep) -> TenantsOut:
    async with rt.deadline():
        found = await dashboard.tenant_states(rt.pool)
        usage = _usage(await stats.depth(rt.pool))
    return TenantsOut(
        tenants=[TenantStateOut.of(s, usage.get(s.tenant.id, UsageOut())) for s in found]
    )


@router.get(
    "/v1/admin/queues",
    response_model=QueuesOut,
    summary="Every queue: its defaults and worker replicas (admin only)",
    responses=docs.errors(*docs.COMMON),
)
async def admin_queues(_: AdminDep, rt: RuntimeDep) -> QueuesOut:
    async with rt.deadline():
        found = await dashboard.queue_list(rt.pool)
    return QueuesOut(
        queues=[
            QueueInfoOut(
                name=q.name,
                default_max_attempts=q.default_max_attempts,
                max_attempts=queues.QueueDefaults(q.name, q.default_max_attempts).max_attempts,
                created_at=q.created_at,
                replicas_reported_at=q.replicas.reported_at if q.replicas else None,
                **ReplicasOut.fields_of(q.replicas),
            )
            for q in found
        ]
    )
