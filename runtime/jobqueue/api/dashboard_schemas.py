"""Bodies of the dashboard's routes: overview, admin views, bulk actions."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from jobqueue.api.schemas import QUEUE_PATTERN, TYPE_PATTERN, WireDatetime
from jobqueue.db import bulk, dashboard
from jobqueue.models import JobStatus


class MinuteOut(BaseModel):
    minute: datetime = Field(description="start of the minute (database clock)")
    succeeded: int = 0
    dlq: int = 0
    cancelled: int = 0


class ReplicasOut(BaseModel):
    """A queue's worker pods as the operator last reported them (null: it
    does not run the queue, or has not reported yet)."""

    replicas: int | None = Field(
        None, description="worker pods as the operator last reported them; null: not known"
    )
    ready_replicas: int | None = None
    max_replicas: int | None = None

    @staticmethod
    def fields_of(reported: dashboard.Replicas | None) -> dict[str, int]:
        if reported is None:
            return {}
        return {
            "replicas": reported.replicas,
            "ready_replicas": reported.ready_replicas,
            "max_replicas": reported.max_replicas,
        }


class QueueOverviewOut(ReplicasOut):
    queue: str
    jobs: dict[str, int] = Field(
        description="unfinished and dead-lettered jobs by status (queued, leased, running, dlq)"
    )
    oldest_queued_age_seconds: float | None = Field(
        description="age of the oldest job ready to run here; null when none is"
    )
    busy_workers: int = Field(description="workers holding at least one of these jobs now")
    throughput: list[MinuteOut] = Field(description="jobs finished per minute, oldest first")


class OverviewOut(BaseModel):
    minutes: int
    now: datetime
    queues: list[QueueOverviewOut]


class UsageOut(BaseModel):
    queued: int = 0
    active: int = Field(0, description="leased or running")
    dlq: int = 0


class TenantStateOut(BaseModel):
    id: str
    enabled: bool
    max_concurrent: int
    rate_per_minute: int
    rate_burst: int
    weight: int
    max_queued: int
    usage: UsageOut
    rate_tokens: int = Field(description="requests its rate limit allows right now")

    @classmethod
    def of(cls, state: dashboard.TenantState, usage: UsageOut) -> TenantStateOut:
        values = {**asdict(state.tenant), "usage": usage, "rate_tokens": state.rate_tokens}
        return cls(**{name: values[name] for name in cls.model_fields})


class TenantsOut(BaseModel):
    tenants: list[TenantStateOut]


class QueueInfoOut(ReplicasOut):
    name: str
    default_max_attempts: int | None = Field(description="null: jobs get 5")
    max_attempts: int = Field(description="what a job submitted without max_attempts gets")
    created_at: datetime
    replicas_reported_at: datetime | None = None


class QueuesOut(BaseModel):
    queues: list[QueueInfoOut]


class BulkIn(BaseModel):
    """Which jobs: the same filters as GET /v1/jobs; none means all of the caller's."""

    model_config = ConfigDict(extra="forbid")

    status: JobStatus | None = None
    queue: str | None = Field(None, pattern=QUEUE_PATTERN)
    type: str | None = Field(None, pattern=TYPE_PATTERN)
    created_after: WireDatetime | None = None
    created_before: WireDatetime | None = None
    limit: StrictInt = Field(
        bulk.MAX_LIMIT, ge=1, le=bulk.MAX_LIMIT,
        description="at most this many jobs change per call; call again while `more`",
    )


class BulkRetryIn(BulkIn):
    reset_attempts: StrictBool = Field(False, description="start counting attempts from zero")


class BulkOut(BaseModel):
    changed: int
    more: bool = Field(description="matching jobs in a state this action applies to remain")
