"""Rows to records. Kept apart so every aggregate builds a Job the same way."""

from __future__ import annotations

from jobqueue.db import Record
from jobqueue.models import (
    Job,
    JobId,
    JobStatus,
    LeaseToken,
    NewJob,
    Priority,
    Tenant,
    TenantId,
    Transition,
    WorkerId,
)

# Enum lookups by value without the Enum constructor's machinery: rows.job
# runs for every leased job.
_STATUS = {s.value: s for s in JobStatus}
_PRIORITY = {p.value: p for p in Priority}


def job(r: Record) -> Job:
    return Job(
        id=JobId(r["id"]),
        tenant_id=TenantId(r["tenant_id"]),
        queue=r["queue"],
        type=r["type"],
        data=r["payload"],
        status=_STATUS[r["status"]],
        priority=_PRIORITY[r["priority"]],
        attempt=r["attempt"],
        max_attempts=r["max_attempts"],
        timeout_seconds=r["timeout_seconds"],
        idempotency_key=r["idempotency_key"],
        lease_owner=WorkerId(r["lease_owner"]) if r["lease_owner"] else None,
        lease_token=LeaseToken(r["lease_token"]) if r["lease_token"] else None,
        lease_expires_at=r["lease_expires_at"],
        scheduled_at=r["scheduled_at"],
        created_at=r["created_at"],
        leased_at=r["leased_at"],
        started_at=r["started_at"],
        finished_at=r["finished_at"],
        updated_at=r["updated_at"],
        last_error=r["last_error"],
        errors=r["errors"],
        result=r["result"],
        trace_context=r["trace_context"],
        seq=r["seq"],
        # get(): a lease may return fewer columns than the whole row.
        progress=r.get("progress"),
        progress_note=r.get("progress_note"),
    )


def inserted(r: Record, tenant_id: TenantId, new: NewJob) -> Job:
    """The job a batch submit just inserted, from the columns the database
    chose (id, seq, max_attempts, timestamps) and the request for the rest.

    Decoding whole rows back (payload and errors as JSON) cost more Python
    time than everything else a batch does. The payload is the one sent:
    jsontext stores every value exactly except -0.0, which a later read
    shows as 0.0, and jsonb's own key order.
    """
    return Job(
        id=JobId(r["id"]),
        tenant_id=tenant_id,
        queue=new.queue,
        type=new.type,
        data=new.data,
        status=JobStatus.QUEUED,
        priority=_PRIORITY[int(new.priority)],
        attempt=0,
        max_attempts=r["max_attempts"],
        timeout_seconds=new.timeout_seconds,
        idempotency_key=new.idempotency_key,
        lease_owner=None,
        lease_token=None,
        lease_expires_at=None,
        scheduled_at=r["scheduled_at"],
        created_at=r["created_at"],
        leased_at=None,
        started_at=None,
        finished_at=None,
        updated_at=r["updated_at"],
        last_error=None,
        errors=[],
        result=None,
        trace_context=new.trace_context,
        seq=r["seq"],
    )


def transition(r: Record) -> Transition:
    return Transition(
        job_id=JobId(r["id"]),
        tenant_id=TenantId(r["tenant_id"]),
        status=_STATUS[r["status"]],
        attempt=r["attempt"],
    )


def tenant(r: Record) -> Tenant:
    return Tenant(
        id=TenantId(r["id"]),
        enabled=r["enabled"],
        max_concurrent=r["max_concurrent"],
        rate_per_minute=r["rate_per_minute"],
        rate_burst=r["rate_burst"],
        weight=r["weight"],
        max_queued=r["max_queued"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
    )
