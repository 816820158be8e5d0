"""How a stored job is shown: the one projection of `models.Job` that the
API's `JobOut` and the CLI's JSON are both made from (pure).

A row stored before the nesting limit must not fail a read or a whole list:
its too-deep `data` or `result` is shown as null, and `omitted` says why.
The lease token, the trace context and the FIFO sequence number are never
shown; the lease's owner and deadline only to operators (`internal=True`).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Final

from jobqueue import validation
from jobqueue.models import Job

_FIELDS: Final = tuple(f.name for f in fields(Job))
_NEVER: Final = frozenset({"lease_token", "trace_context", "seq"})
_INTERNAL: Final = frozenset({"lease_owner", "lease_expires_at"})
# What a list shows of each job (`jobqueue jobs list --json`, `jobqueue submit`).
SUMMARY: Final = (
    "id", "tenant_id", "queue", "type", "status", "priority", "attempt", "max_attempts",
    "idempotency_key", "scheduled_at", "created_at",
)


def omitted(job: Job) -> dict[str, str]:
    """The fields too deep to show, each with the reason."""
    return {
        name: reason
        for name, value in (("data", job.data), ("result", job.result))
        if (reason := validation.omitted_reason(value)) is not None
    }


def shown(job: Job, *, internal: bool = False) -> dict[str, Any]:
    """Every field a reader may see, as Python values, in the order of `Job`;
    priority by name, plus `omitted` (None when nothing is)."""
    hidden = _NEVER if internal else _NEVER | _INTERNAL
    out = {name: getattr(job, name) for name in _FIELDS if name not in hidden}
    left_out = omitted(job)
    for name in left_out:
        out[name] = None
    out["priority"] = job.priority.name.lower()
    out["omitted"] = left_out or None
    return out


def summary(job: Job) -> dict[str, Any]:
    view = shown(job)
    return {name: view[name] for name in SUMMARY}
