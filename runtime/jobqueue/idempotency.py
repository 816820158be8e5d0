"""The request fingerprint behind idempotent submission (pure).

Two submissions with the same key are "the same request" when everything
that shapes the job matches: type, data, queue, priority, attempts, timeout
and schedule. Trace context is not part of it: a client retrying a request
starts a new trace.

The fingerprint is of the request as sent, not of the job it made: an
omitted max_attempts is fingerprinted as omitted (null), so a retry still
matches after the queue's default changed, and differs from any explicit
value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json

from jobqueue.models import NewJob

# What an omitted max_attempts was fingerprinted as before queues had
# defaults (schema version 1).
_LEGACY_MAX_ATTEMPTS = 5


# json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# builds a new encoder on every call, which was half of a fingerprint's cost;
# this one is built once and writes the same text.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(job: NewJob) -> str:
    canonical = _CANONICAL.encode(
        {
            "type": job.type,
            "data": job.data,
            "queue": job.queue,
            "priority": int(job.priority),
            "max_attempts": job.max_attempts,
            "timeout_seconds": job.timeout_seconds,
            "run_at": job.run_at.isoformat() if job.run_at else None,
        }
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def matches(stored: str | None, job: NewJob, job_fingerprint: str) -> bool:
    """Is `stored` (an existing job's fingerprint) the fingerprint of `job`'s request?

    Also true when `job` omits max_attempts and `stored` was written by a
    version that recorded an omitted value as 5: without that, a client's
    retry that lands on an upgraded API replica during a rolling upgrade
    would get a 409 for its own request. The price: omitting max_attempts
    also replays a job that asked for exactly 5 explicitly.
    """
    if stored == job_fingerprint:
        return True
    if job.max_attempts is not None:
        return False
    return stored == fingerprint(dataclasses.replace(job, max_attempts=_LEGACY_MAX_ATTEMPTS))
