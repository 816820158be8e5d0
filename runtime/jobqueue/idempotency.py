"""The request fingerprint behind idempotent submission (pure).

Two submissions with the same key are "the same request" when everything
that shapes the job matches: type, data, queue, priority, attempts, timeout
and schedule. Trace context is not part of it: a client retrying a request
starts a new trace.
"""

from __future__ import annotations

import hashlib
import json

from jobqueue.models import NewJob


def fingerprint(job: NewJob) -> str:
    canonical = json.dumps(
        {
            "type": job.type,
            "data": job.data,
            "queue": job.queue,
            "priority": int(job.priority),
            "max_attempts": job.max_attempts,
            "timeout_seconds": job.timeout_seconds,
            "run_at": job.run_at.isoformat() if job.run_at else None,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()
