"""Status of a Tenant or JobQueue from what a reconcile observed (pure).

Conditions follow metav1.Condition: `Ready` says whether the resource does
its job, `Degraded` names what is wrong when it does not. A condition's
lastTransitionTime changes only when its status does, so a timer that
refreshes numbers every few seconds does not make conditions look new.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobqueue.models import DepthRow, JobStatus

READY, DEGRADED = "Ready", "Degraded"


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a resource is not Ready: a CamelCase reason and a message for humans."""

    reason: str
    message: str


# Reasons, named for what the user should look at.
INVALID_SPEC = "InvalidSpec"
DATABASE_UNAVAILABLE = "DatabaseUnavailable"
DATABASE_SECRET_MISSING = "DatabaseSecretMissing"
API_KEY_SECRET_MISSING = "ApiKeySecretMissing"
API_KEY_IN_USE = "ApiKeyInUse"
APPLY_FAILED = "ApplyFailed"
SCHEDULES_NOT_SYNCED = "SchedulesNotSynced"
LIMITS_NOT_SYNCED = "LimitsNotSynced"


@dataclass(frozen=True, slots=True)
class Depth:
    """Jobs of one tenant or queue, summed over the rows of `db.stats.depth`."""

    queued: int = 0
    running: int = 0
    dead_letter: int = 0
    oldest_ready_age_seconds: float | None = None

    @classmethod
    def of(cls, rows: Iterable[DepthRow]) -> Depth:
        queued = running = dead = 0
        oldest: float | None = None
        for row in rows:
            if row.status is JobStatus.QUEUED:
                queued += row.jobs
                age = row.oldest_ready_age_seconds
                if age is not None and (oldest is None or age > oldest):
                    oldest = age
            elif row.status in (JobStatus.LEASED, JobStatus.RUNNING):
                running += row.jobs
            elif row.status is JobStatus.DLQ:
                dead += row.jobs
        return cls(queued, running, dead, oldest)


def _timestamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def conditions(
    *,
    problem: Problem | None,
    ready_message: str,
    generation: int | None,
    previous: Sequence[Mapping[str, Any]] | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """Ready and Degraded, keeping each one's lastTransitionTime while its status holds."""
    if problem is None:
        wanted = [
            (READY, "True", "Reconciled", ready_message),
            (DEGRADED, "False", "AsExpected", "nothing to report"),
        ]
    else:
        wanted = [
            (READY, "False", problem.reason, problem.message),
            (DEGRADED, "True", problem.reason, problem.message),
        ]
    before = {c.get("type"): c for c in previous or ()}
    out = []
    for type_, status, reason, message in wanted:
        old = before.get(type_)
        since = (
            old["lastTransitionTime"]
            if old and old.get("status") == status and old.get("lastTransitionTime")
            else _timestamp(now)
        )
        condition: dict[str, Any] = {
            "type": type_,
            "status": status,
            "reason": reason,
            "message": message[:32768],
            "lastTransitionTime": since,
        }
        if generation is not None:
            condition["observedGeneration"] = generation
        out.append(condition)
    return out


def _observed(
    generation: int | None, problem: Problem | None, previous: Mapping[str, Any] | None,
    now: datetime, *, ready_message: str,
) -> dict[str, Any]:
    """What every status starts with: the generation seen and the conditions."""
    return {
        "observedGeneration": generation,
        "conditions": conditions(
            problem=problem,
            ready_message=ready_message,
            generation=generation,
            previous=(previous or {}).get("conditions"),
            now=now,
        ),
    }


def tenant_status(
    *,
    generation: int | None,
    problem: Problem | None,
    depth: Depth | None,
    api_key_secret: Mapping[str, str] | None,
    previous: Mapping[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    status = _observed(generation, problem, previous, now,
                       ready_message="quotas written to the database; API key registered")
    # None clears a number in the merge patch: a stale count would mislead.
    status |= {
        "queuedJobs": depth.queued if depth else None,
        "runningJobs": depth.running if depth else None,
        "deadLetterJobs": depth.dead_letter if depth else None,
    }
    if api_key_secret is not None:
        status["apiKeySecret"] = dict(api_key_secret)
    return status


def jobqueue_status(
    *,
    generation: int | None,
    queue: str | None,
    problem: Problem | None,
    depth: Depth | None,
    worker: Mapping[str, Any] | None,
    reaper: Mapping[str, Any] | None,
    autoscaled: bool | None,
    previous: Mapping[str, Any] | None,
    now: datetime,
    schedules: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """`worker` and `reaper` are the Deployments as the apiserver returned them."""
    status = _observed(generation, problem, previous, now,
                       ready_message="workers and reaper applied; database reachable")
    if queue is not None:
        status["queue"] = queue
    if autoscaled is not None:
        status["autoscaled"] = autoscaled
    if schedules is not None:
        status["schedules"] = schedules  # a list replaces the old one in a merge patch
    # None clears a number in the merge patch: a stale count would mislead.
    oldest = depth.oldest_ready_age_seconds if depth else None
    status |= {
        "queueDepth": depth.queued if depth else None,
        "runningJobs": depth.running if depth else None,
        "deadLetterJobs": depth.dead_letter if depth else None,
        "oldestJobAgeSeconds": (int(oldest) if oldest is not None else 0) if depth else None,
        "replicas": count(worker, "replicas"),
        "readyReplicas": count(worker, "readyReplicas"),
        "reaperReadyReplicas": count(reaper, "readyReplicas"),
    }
    return status


def count(deployment: Mapping[str, Any] | None, field: str) -> int | None:
    """A number of a Deployment's status (0 when the apiserver left it out)."""
    if deployment is None:
        return None
    return int((deployment.get("status") or {}).get(field) or 0)
