"""Rows for tests, made through the db layer like production makes them."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from typing import Any

from jobqueue import db
from jobqueue.db import jobs, leases, tenants
from jobqueue.models import (
    Job,
    JobId,
    JobStatus,
    Lease,
    LeaseToken,
    NewJob,
    Priority,
    Tenant,
    TenantId,
    TenantQuotas,
    WorkerId,
)

_n = itertools.count()


async def tenant(pool: db.Executor, name: str | None = None, **quotas: Any) -> Tenant:
    tid = TenantId(name or f"tenant-{next(_n)}")
    return await tenants.upsert(pool, tenant_id=tid, quotas=TenantQuotas(**quotas))


def new_job(**kw: Any) -> NewJob:
    kw.setdefault("type", "echo")
    kw.setdefault("data", {"n": next(_n)})
    if "priority" in kw and not isinstance(kw["priority"], Priority):
        kw["priority"] = Priority.parse(kw["priority"])
    return NewJob(**kw)


async def submit(pool: db.Executor, tenant_id: TenantId, **kw: Any) -> Job:
    return (await jobs.submit(pool, tenant_id=tenant_id, job=new_job(**kw))).job


async def backlog(pool: db.Executor, tenant_id: TenantId, n: int, **kw: Any) -> list[Job]:
    out: list[Job] = []
    for start in range(0, n, 5000):
        batch = [new_job(**kw) for _ in range(min(5000, n - start))]
        res = await jobs.submit_many(pool, tenant_id=tenant_id, jobs=batch)
        for r in res:
            assert not isinstance(r, Exception)
            out.append(r.job)
    return out


async def dead_lettered(
    pool: db.Executor, tenant_id: TenantId, n: int, *, queue: str = "default", **kw: Any
) -> list[Job]:
    """`n` jobs of `queue` sent to the DLQ the way a worker does it: leased,
    then failed for good. Leases the queue, so give it no other ready jobs."""
    made = await backlog(pool, tenant_id, n, queue=queue, **kw)
    held = await leases.lease(pool, queue=queue, worker_id=WorkerId("factory"), limit=n,
                              lease_seconds=60)
    assert len(held) == n, f"leased {len(held)} of {n}"
    for lease in held:
        assert lease.job.lease_token is not None
        await leases.fail(pool, job_id=lease.job.id, token=lease.job.lease_token,
                          error="boom", retry_in_seconds=0, permanent=True)
    return made


def lease(type: str = "echo", data: Any = None, *, attempt: int = 1,
          timeout: int = 300) -> Lease:
    """A leased job as the db layer returns it, without a database (unit tests)."""
    now = datetime.now(UTC)
    return Lease(
        Job(
            id=JobId(uuid.uuid4()), tenant_id=TenantId("t"), queue="default", type=type,
            data=data if data is not None else {}, status=JobStatus.LEASED,
            priority=Priority.NORMAL, attempt=attempt, max_attempts=5,
            timeout_seconds=timeout, idempotency_key=None, lease_owner=WorkerId("w"),
            lease_token=LeaseToken(uuid.uuid4()), lease_expires_at=now, scheduled_at=now,
            created_at=now, leased_at=now, started_at=None, finished_at=None, updated_at=now,
            last_error=None, errors=[], result=None, trace_context=None,
        )
    )
