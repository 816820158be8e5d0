"""Schedules as the runtime shares them, and the rules they must meet (pure).

A `ScheduleSpec` is what a tenant (API, CLI) or a JobQueue (operator)
declares; a `Schedule` is the stored row with its fire times. `check`
refuses a spec every entrance would refuse, with the same message, before
anything is written (docs/design.md, invariant 13).
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from jobqueue import cron, errors, validation
from jobqueue.cron import MissedPolicy, OverlapPolicy
from jobqueue.models import JSON, NewJob, Priority, TenantId


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    name: str
    cron: str
    type: str
    timezone: str = "UTC"
    data: JSON = field(default_factory=dict)
    queue: str = "default"
    priority: Priority = Priority.NORMAL
    max_attempts: int | None = None  # None: the queue's default, else 5
    overlap: OverlapPolicy = OverlapPolicy.ALLOW
    missed: MissedPolicy = MissedPolicy.SKIP


class SkipReason(enum.StrEnum):
    """Why a fire time made no job: the doors a submission meets (the
    tenant's API rate limit is not one of them: docs/design.md, invariant 13)."""

    OVERLAP = "overlap"  # overlap skip, and the last fire's job is unfinished
    TENANT_DISABLED = "tenant_disabled"
    BACKLOG_FULL = "backlog_full"  # the tenant's queued jobs are at its max_queued


@dataclass(frozen=True, slots=True)
class Schedule:
    id: uuid.UUID
    tenant_id: TenantId
    spec: ScheduleSpec
    owner: str | None  # None: made through the API or CLI; else "namespace/jobqueue"
    next_fire_at: datetime
    last_fire_at: datetime | None
    last_job_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    last_skipped_at: datetime | None = None  # the latest fire time that made no job
    last_skip_reason: SkipReason | None = None
    skipped_fires: int = 0  # fire times that made no job, ever


def check(spec: ScheduleSpec) -> cron.Cron:
    """The spec's Cron, or InvalidInput naming the first problem."""
    if (problem := validation.tenant_id_problem(spec.name)) is not None:
        raise errors.InvalidInput(problem.replace("tenant id", "schedule name", 1))
    try:
        parsed = cron.parse(spec.cron, spec.timezone)
    except cron.BadSchedule as exc:
        raise errors.InvalidInput(str(exc)) from None
    template = NewJob(type=spec.type, data=spec.data, queue=spec.queue, priority=spec.priority,
                      max_attempts=spec.max_attempts)
    validation.check_new_job(template)
    if not isinstance(spec.overlap, OverlapPolicy) or not isinstance(spec.missed, MissedPolicy):
        raise errors.InvalidInput("overlap must be allow or skip; missed, skip or run_once")
    return parsed
