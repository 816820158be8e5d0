"""Request and response bodies, as the OpenAPI document shows them.

Bounds mirror the table's check constraints, so bad input is a 422 here
and never reaches the database. `data` is any JSON value; its encoded size
is checked by the route (413 above the configured limit).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from jobqueue import jobview, unique, validation
from jobqueue.models import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT_SECONDS,
    DepthRow,
    Job,
    JobStatus,
    Priority,
    Unique,
)

# One definition for every entrance (API, client, CLI, db layer).
KEY_PATTERN = validation.KEY_PATTERN
QUEUE_PATTERN = validation.QUEUE_PATTERN
TYPE_PATTERN = validation.TYPE_PATTERN
TENANT_PATTERN = validation.TENANT_PATTERN

PriorityName = Literal["low", "normal", "high", "critical"]


def _storable(value: Any) -> Any:
    # The same check the db layer makes before SQL, here so it is a 422
    # naming the field: nesting past the limit, NUL, lone surrogates, NaN.
    if (problem := validation.data_problem(value)) is not None:
        raise ValueError(problem)
    return value


# Any JSON value except null: the column holds JSON, and SQL NULL is not JSON.
JsonData = Annotated[
    dict[str, Any] | list[Any] | str | int | float | bool, AfterValidator(_storable)
]

IdempotencyKey = Annotated[
    str, Field(min_length=1, max_length=validation.KEY_MAX_LENGTH, pattern=KEY_PATTERN)
]

_ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_datetime_text(value: object) -> object:
    # Lax parsing reads a number (or a string of digits) as Unix seconds, so
    # `"run_at": 1.5` would mean 1970; on the wire a time is ISO 8601 text.
    if isinstance(value, str) and _ISO_DATETIME.match(value):
        return value
    raise ValueError("must be ISO 8601 text with a UTC offset, e.g. 2030-01-01T00:00:00Z")


WireDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_datetime_text)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _original_body(value: Any) -> Any:
    """The first design's body, `{"payload": {"job_type": T, "data": D}, ...}`,
    read as `{"type": T, "data": D, ...}`. Anything else passes unchanged,
    so a malformed alias gets the usual field errors."""
    if not isinstance(value, dict) or "payload" not in value:
        return value
    payload = value["payload"]
    if "type" in value or "data" in value:
        raise ValueError("give either type and data, or payload.job_type and payload.data")
    if not isinstance(payload, dict) or not set(payload) <= {"job_type", "data"}:
        raise ValueError('payload must be an object of "job_type" and "data" only')
    rest = {k: v for k, v in value.items() if k != "payload"}
    if "job_type" in payload:
        rest["type"] = payload["job_type"]
    if "data" in payload:
        rest["data"] = payload["data"]
    return rest


class UniqueIn(_In):
    """Submit only if no job with the same type, queue and values at `keys`
    exists in `states` within `period_seconds` (docs/design.md, invariant 12)."""

    keys: list[Annotated[str, Field(min_length=1, max_length=unique.MAX_KEY_LENGTH)]] | None = (
        Field(None, min_length=1, max_length=unique.MAX_KEYS,
              description="top-level keys of data that identify the job; omitted: all of data")
    )
    period_seconds: StrictInt | None = Field(
        None, ge=1, le=unique.MAX_PERIOD_SECONDS,
        description="how long a job blocks duplicates after it was created; omitted: forever",
    )
    states: list[JobStatus] | None = Field(
        None, min_length=1,
        description="states in which a job blocks duplicates; omitted: all but dlq and cancelled",
    )

    def to_model(self) -> Unique:
        return unique.of(self.keys, self.period_seconds, self.states)


class JobIn(_In):
    """A job to submit. The original design's body,
    `{"payload": {"job_type": ..., "data": ...}, "queue": ..., ...}`, is
    accepted too and means the same as `type` and `data`."""

    type: str = Field(pattern=TYPE_PATTERN, examples=["send_email"])
    data: JsonData = Field(
        default_factory=dict,
        description=(
            "any JSON value but null, its strings without NUL (\\u0000), which "
            f"PostgreSQL cannot store, nested at most {validation.MAX_JSON_DEPTH} levels "
            "deep; the handler gets it"
        ),
    )
    queue: str = Field("default", pattern=QUEUE_PATTERN)
    # Strict numbers and booleans on the wire: lax parsing would take `true`
    # for 1, "3" for 3 and 2.0 for 2, and store what the caller never meant.
    priority: PriorityName | Annotated[StrictInt, Field(ge=0, le=3)] = "normal"
    max_attempts: StrictInt | None = Field(
        None,
        ge=1,
        le=1000,
        description="attempts before the DLQ; omitted or null: the queue's default "
        f"(a JobQueue's maxAttempts), else {DEFAULT_MAX_ATTEMPTS}",
    )
    timeout_seconds: StrictInt = Field(DEFAULT_TIMEOUT_SECONDS, ge=1, le=86400)
    run_at: WireDatetime | None = Field(
        None, description="not before this time (a UTC offset is required)"
    )
    unique: UniqueIn | None = Field(
        None, description="a duplicate returns the existing job (200, `Unique-Duplicate: true`)"
    )

    def priority_value(self) -> Priority:
        return Priority.parse(self.priority)

    @model_validator(mode="before")
    @classmethod
    def _alias(cls, value: Any) -> Any:
        return _original_body(value)


class BatchJobIn(JobIn):
    idempotency_key: IdempotencyKey


class BatchIn(_In):
    jobs: list[BatchJobIn] = Field(min_length=1, max_length=10_000)


class RetryIn(_In):
    reset_attempts: StrictBool = Field(
        False, description="start counting attempts from zero again"
    )


class TokenIn(_In):
    tenant_id: str = Field(pattern=TENANT_PATTERN, max_length=63)
    api_key: str = Field(min_length=1, max_length=512)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class ErrorEntry(BaseModel):
    """One failed attempt, oldest first; the last 20 are kept."""

    attempt: int
    error: str
    at: datetime


def _trace_id(carrier: dict[str, str] | None) -> str | None:
    # traceparent is version-traceid-spanid-flags (W3C Trace Context).
    parts = (carrier or {}).get("traceparent", "").split("-")
    if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != "0" * 32:
        return parts[1]
    return None


class JobOut(BaseModel):
    id: uuid.UUID
    tenant_id: str
    queue: str
    type: str
    data: Any
    status: JobStatus
    priority: PriorityName
    attempt: int
    max_attempts: int
    timeout_seconds: int
    idempotency_key: str | None
    scheduled_at: datetime
    created_at: datetime
    leased_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    last_error: str | None
    errors: list[ErrorEntry] = Field(
        default_factory=list,
        description="the failed attempts (at most the last 20), oldest first",
    )
    progress: float | None = Field(
        None, description="the handler's latest ctx.progress(), 0 to 1; null if never reported"
    )
    progress_note: str | None = None
    trace_id: str | None = Field(
        None, description="the W3C trace id the job's spans belong to, if it was traced"
    )
    result: Any
    omitted: dict[str, str] | None = Field(
        None,
        description=(
            "fields shown as null because their stored value cannot be served "
            f"(nested deeper than {validation.MAX_JSON_DEPTH} levels, stored before that "
            "limit), each with the reason; null when nothing is omitted"
        ),
    )

    @classmethod
    def of(cls, job: Job) -> JobOut:
        view = jobview.shown(job)
        view["errors"] = _errors(job.errors)
        view["trace_id"] = _trace_id(job.trace_context)
        return cls(**{name: view[name] for name in cls.model_fields})


def _errors(stored: Any) -> list[ErrorEntry]:
    # Rows written by hand or by an older version may lack a field: skip
    # such an entry rather than fail the read (invariant 11).
    out: list[ErrorEntry] = []
    for e in stored if isinstance(stored, list) else []:
        try:
            out.append(ErrorEntry(attempt=e["attempt"], error=e["error"], at=e["at"]))
        except (KeyError, TypeError, ValueError):
            continue
    return out


class JobPage(BaseModel):
    jobs: list[JobOut]
    total: int = Field(description="matches; exact when total_exact, else at least this many")
    total_exact: bool = True
    page: int
    page_size: int
    next: str | None = Field(
        None, description="pass as `after` for the next page; null on the last page"
    )


class FieldError(BaseModel):
    loc: list[str]
    msg: str


class ErrorOut(BaseModel):
    error: str = Field(examples=["not_found"])
    detail: str
    fields: list[FieldError] | None = None


class BatchItemOut(BaseModel):
    index: int
    outcome: Literal["created", "replayed", "conflict"]
    job: JobOut | None = None
    error: ErrorOut | None = None


class BatchOut(BaseModel):
    results: list[BatchItemOut]
    created: int
    replayed: int
    conflicts: int


class DepthOut(BaseModel):
    tenant_id: str
    queue: str
    status: JobStatus
    jobs: int
    oldest_ready_age_seconds: float | None

    @classmethod
    def of(cls, row: DepthRow) -> DepthOut:
        return cls(**dataclasses.asdict(row))


class StatsOut(BaseModel):
    depth: list[DepthOut]
    oldest_queued_age_seconds: float | None = Field(
        description="age of the oldest job ready to run, over every queue"
    )


class StatusOut(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = None
