"""Plain data the whole runtime shares: ids, job states and records.

Pure: no I/O. The db layer builds these from rows; the API turns them into
its response schemas.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NewType

JobId = NewType("JobId", uuid.UUID)
LeaseToken = NewType("LeaseToken", uuid.UUID)
TenantId = NewType("TenantId", str)
WorkerId = NewType("WorkerId", str)

JSON = Any  # a value that json.dumps accepts

# Defaults, each defined here once (the table's column defaults match them).
# Attempts of a job submitted without max_attempts to a queue without a
# default of its own (a JobQueue's maxAttempts).
DEFAULT_MAX_ATTEMPTS: Final = 5
# Long enough for most work; a job that needs more says so when submitted.
DEFAULT_TIMEOUT_SECONDS: Final = 300


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    LEASED = "leased"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    DLQ = "dlq"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.DLQ, JobStatus.CANCELLED)


class Priority(enum.IntEnum):
    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3

    @classmethod
    def parse(cls, value: str | int) -> Priority:
        if isinstance(value, int):
            return cls(value)
        try:
            return cls[value.upper()]
        except KeyError:
            raise ValueError(
                f"unknown priority {value!r}; expected one of "
                + ", ".join(p.name.lower() for p in cls)
            ) from None


# States in which a unique job blocks a new one, unless it says otherwise:
# everything but dlq and cancelled (a failed or withdrawn job may be redone).
UNIQUE_STATES_DEFAULT: frozenset[JobStatus] = frozenset(
    {JobStatus.QUEUED, JobStatus.LEASED, JobStatus.RUNNING, JobStatus.SUCCEEDED}
)


@dataclass(frozen=True, slots=True)
class Unique:
    """Refuse a second job with the same type, queue and values at `keys` of
    its data (all of the data when `keys` is None) while the first is in one
    of `states` and younger than `period_seconds` (None: any age).
    See jobqueue.unique and docs/design.md, invariant 12."""

    keys: tuple[str, ...] | None = None
    period_seconds: int | None = None
    states: frozenset[JobStatus] = UNIQUE_STATES_DEFAULT


@dataclass(frozen=True, slots=True)
class NewJob:
    """What a client asks for. Defaults match the column defaults, except
    max_attempts: None asks for the queue's default (DEFAULT_MAX_ATTEMPTS when it has none),
    resolved when the job is inserted."""

    type: str
    data: JSON = field(default_factory=dict)
    queue: str = "default"
    priority: Priority = Priority.NORMAL
    max_attempts: int | None = None
    timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS
    run_at: datetime | None = None
    idempotency_key: str | None = None
    trace_context: dict[str, str] | None = None
    unique: Unique | None = None


@dataclass(frozen=True, slots=True)
class Job:
    id: JobId
    tenant_id: TenantId
    queue: str
    type: str
    data: JSON
    status: JobStatus
    priority: Priority
    attempt: int
    max_attempts: int
    timeout_seconds: int
    idempotency_key: str | None
    lease_owner: WorkerId | None
    lease_token: LeaseToken | None
    lease_expires_at: datetime | None
    scheduled_at: datetime
    created_at: datetime
    leased_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    last_error: str | None
    errors: list[dict[str, JSON]]
    result: JSON
    trace_context: dict[str, str] | None
    seq: int = 0
    # The latest ctx.progress() of any attempt: a fraction in [0, 1] and a note.
    progress: float | None = None
    progress_note: str | None = None


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submission's outcome: the job, and whether it already existed
    (`replayed`: the same idempotency key; `duplicate`: a unique job's
    duplicate, the existing job returned and nothing inserted)."""

    job: Job
    replayed: bool
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Lease:
    """A job as a worker holds it. (job_id, token) fences every later call."""

    job: Job

    @property
    def job_id(self) -> JobId:
        return self.job.id

    @property
    def token(self) -> LeaseToken:
        assert self.job.lease_token is not None
        return self.job.lease_token


@dataclass(frozen=True, slots=True)
class Transition:
    """One row a fenced update changed."""

    job_id: JobId
    tenant_id: TenantId
    status: JobStatus
    attempt: int


@dataclass(frozen=True, slots=True)
class Tenant:
    id: TenantId
    enabled: bool
    max_concurrent: int
    rate_per_minute: int
    rate_burst: int
    weight: int
    max_queued: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TenantQuotas:
    enabled: bool = True
    max_concurrent: int = 100
    rate_per_minute: int = 6000
    rate_burst: int = 1000
    weight: int = 1
    max_queued: int = 1_000_000


@dataclass(frozen=True, slots=True)
class DepthRow:
    tenant_id: TenantId
    queue: str
    status: JobStatus
    jobs: int
    oldest_ready_age_seconds: float | None


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page of a listing ends: the last row's place in the order
    (created_at DESC, seq DESC). The next page starts after it."""

    created_at: datetime
    seq: int


@dataclass(frozen=True, slots=True)
class Page:
    jobs: list[Job]
    # Exact when `total_exact`; otherwise the count stopped there ("at least").
    total: int
    page: int
    page_size: int
    total_exact: bool = True
    # Set when more rows follow this page.
    next: Cursor | None = None
