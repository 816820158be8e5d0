"""Request and response bodies of the schedule routes (docs/design.md, invariant 13)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from jobqueue import cron
from jobqueue.api.schemas import QUEUE_PATTERN, TYPE_PATTERN, JsonData, PriorityName
from jobqueue.cron import MissedPolicy, OverlapPolicy
from jobqueue.models import Priority
from jobqueue.scheduling import Schedule, ScheduleSpec, SkipReason

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cron: str = Field(
        min_length=1, max_length=cron.MAX_EXPRESSION_LENGTH, examples=["0 3 * * *"],
        description="five fields: minute hour day-of-month month day-of-week (Debian cron)",
    )
    timezone: str = Field("UTC", min_length=1, max_length=64, examples=["Europe/Berlin"],
                          description="an IANA time zone; DST is handled as Debian cron does")
    type: str = Field(pattern=TYPE_PATTERN)
    data: JsonData = Field(default_factory=dict)
    queue: str = Field("default", pattern=QUEUE_PATTERN)
    priority: PriorityName | Annotated[StrictInt, Field(ge=0, le=3)] = "normal"
    max_attempts: StrictInt | None = Field(None, ge=1, le=1000)
    overlap: OverlapPolicy = Field(
        OverlapPolicy.ALLOW,
        description="skip: do not fire while the previous fire's job is unfinished",
    )
    missed: MissedPolicy = Field(
        MissedPolicy.SKIP,
        description="fire times missed during downtime (later than the reaper's grace): "
        "skip them, or run_once for all of them",
    )

    def to_spec(self, name: str) -> ScheduleSpec:
        return ScheduleSpec(
            name=name, cron=self.cron, timezone=self.timezone, type=self.type, data=self.data,
            queue=self.queue, priority=Priority.parse(self.priority),
            max_attempts=self.max_attempts, overlap=self.overlap, missed=self.missed,
        )


class ScheduleOut(BaseModel):
    id: uuid.UUID
    tenant_id: str
    name: str
    cron: str
    timezone: str
    type: str
    data: Any
    queue: str
    priority: PriorityName
    max_attempts: int | None
    overlap: OverlapPolicy
    missed: MissedPolicy
    owner: str | None = Field(description="the JobQueue that declares it; null: the API's")
    next_fire_at: datetime
    last_fire_at: datetime | None
    last_job_id: uuid.UUID | None
    last_skipped_at: datetime | None = Field(
        description="the latest fire time that made no job; null: none yet")
    last_skip_reason: SkipReason | None = Field(
        description="why: overlap (policy skip, the last job unfinished), tenant_disabled, "
        "or backlog_full (the tenant's queued jobs at its max_queued); such fire times "
        "are dropped, not retried")
    skipped_fires: int = Field(description="fire times that made no job, since creation")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, s: Schedule) -> ScheduleOut:
        p = s.spec
        return cls(
            id=s.id, tenant_id=s.tenant_id, name=p.name, cron=p.cron, timezone=p.timezone,
            type=p.type, data=p.data, queue=p.queue,
            priority=p.priority.name.lower(),
            max_attempts=p.max_attempts, overlap=p.overlap, missed=p.missed, owner=s.owner,
            next_fire_at=s.next_fire_at, last_fire_at=s.last_fire_at, last_job_id=s.last_job_id,
            last_skipped_at=s.last_skipped_at, last_skip_reason=s.last_skip_reason,
            skipped_fires=s.skipped_fires, created_at=s.created_at, updated_at=s.updated_at,
        )


class ScheduleList(BaseModel):
    schedules: list[ScheduleOut]
