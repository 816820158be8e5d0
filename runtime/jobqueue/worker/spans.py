"""The worker's side of a job's trace: its tags, and the acquire_lease span
that starts the worker's part of it.

Pure bookkeeping around `observability.tracing`; the spans that wrap work
(execute_job) and acks (ack_job) are opened where that work happens.
"""

from __future__ import annotations

import dataclasses

from jobqueue.models import Lease, WorkerId
from jobqueue.observability import tracing


def attributes(lease: Lease, worker_id: WorkerId) -> tracing.Attributes:
    job = lease.job
    attrs = tracing.job_attributes(
        job_id=job.id, tenant_id=job.tenant_id, worker_id=worker_id, attempt=job.attempt
    )
    attrs["job_type"] = job.type
    return attrs


def acquired(got: list[Lease], *, worker_id: WorkerId, started_ns: int) -> list[Lease]:
    """Record each job's acquire_lease span; returns the leases to hold.

    A job that came without a trace context (CLI, db layer) gets this span
    as its root and the lease carries its carrier, so the job's later spans
    join it rather than each starting a trace alone.
    """
    ended = tracing.now_ns()
    out = []
    for lease in got:
        job = lease.job
        if job.trace_context:
            if tracing.recording(job.trace_context):
                tracing.record("acquire_lease", parent=job.trace_context, start_time=started_ns,
                               end_time=ended, attributes=attributes(lease, worker_id))
        else:
            carrier = tracing.record_root("acquire_lease", start_time=started_ns, end_time=ended,
                                          attributes=attributes(lease, worker_id))
            lease = Lease(dataclasses.replace(job, trace_context=carrier))
        out.append(lease)
    return out
