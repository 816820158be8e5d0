"""Execution limits as the runtime shares them, and the rules they must meet (pure).

A `LimitSpec` is what the admin (API) or a JobQueue (operator) declares for
a queue: per key (the whole queue, the tenant, or the text at a JSON path
of the job's data), a rate and/or a cap on active jobs. The lease enforces
them (docs/design.md, invariant 14). `check` refuses a spec every entrance
would refuse, with the same message, before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from jobqueue import errors

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
MAX_PATH_DEPTH = 16
MAX_PATH_ELEMENT = 200
MAX_COUNT = 1_000_000
MIN_PERIOD_SECONDS = 0.001
MAX_PERIOD_SECONDS = 86_400.0


class Per(StrEnum):
    """What a limit counts by: one key for the queue, one per tenant, or one
    per value at `path` in the job's data (a missing value counts as '')."""

    QUEUE = "queue"
    TENANT = "tenant"
    DATA = "data"


@dataclass(frozen=True, slots=True)
class Rate:
    """`count` job starts per `period_seconds` for each key; a key that was
    quiet may start `burst` more at once. Any window of one period holds at
    most count + burst starts of a key."""

    count: int
    period_seconds: float
    burst: int = 0


@dataclass(frozen=True, slots=True)
class LimitSpec:
    name: str
    per: Per = Per.QUEUE
    path: tuple[str, ...] | None = None  # Per.DATA only: keys into the job's data
    rate: Rate | None = None
    max_concurrent: int | None = None  # leased or running jobs of a key at once


@dataclass(frozen=True, slots=True)
class Limit:
    queue: str
    spec: LimitSpec
    owner: str | None  # None: made through the API; else "namespace/jobqueue"
    created_at: datetime
    updated_at: datetime


def _bounded(what: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise errors.InvalidInput(f"{what} must be between {low} and {high:,}, not {value}")


def _check_rate(rate: Rate) -> None:
    _bounded("rate count", rate.count, 1, MAX_COUNT)
    _bounded("rate burst", rate.burst, 0, MAX_COUNT)
    if not MIN_PERIOD_SECONDS <= rate.period_seconds <= MAX_PERIOD_SECONDS:
        raise errors.InvalidInput(
            f"rate period must be between {MIN_PERIOD_SECONDS} and {MAX_PERIOD_SECONDS:,.0f}"
            f" seconds, not {rate.period_seconds}"
        )


def _check_path(spec: LimitSpec) -> None:
    if (spec.per is Per.DATA) != (spec.path is not None):
        raise errors.InvalidInput("a path is given exactly when the limit is per data")
    if spec.path is None:
        return
    if not 1 <= len(spec.path) <= MAX_PATH_DEPTH:
        raise errors.InvalidInput(f"path must have 1 to {MAX_PATH_DEPTH} keys")
    for key in spec.path:
        if not 1 <= len(key) <= MAX_PATH_ELEMENT or "\x00" in key:
            raise errors.InvalidInput(
                f"each path key must be 1 to {MAX_PATH_ELEMENT} characters without NUL"
            )


def check(queue: str, spec: LimitSpec) -> None:
    """Raise InvalidInput for what the database would refuse (and more clearly)."""
    if not 1 <= len(queue) <= 63:
        raise errors.InvalidInput(f"queue name must be 1 to 63 characters, not {len(queue)}")
    if not re.fullmatch(NAME_PATTERN, spec.name):
        raise errors.InvalidInput(f"limit name {spec.name!r} must be a DNS label")
    if spec.rate is None and spec.max_concurrent is None:
        raise errors.InvalidInput("a limit needs a rate, a max_concurrent, or both")
    if spec.rate is not None:
        _check_rate(spec.rate)
    if spec.max_concurrent is not None:
        _bounded("max_concurrent", spec.max_concurrent, 1, MAX_COUNT)
    _check_path(spec)
