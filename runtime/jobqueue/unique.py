"""Unique jobs: what makes two submissions "the same job" (pure).

A job submitted with `Unique` is a duplicate of an earlier job of the same
tenant with the same type, queue and values at the selected keys of its
data (all of its data when no keys are given), while that job is in one of
the given states and younger than the period. The digest computed here is
stored in `jobs.unique_key`; the check and the insert happen in one
database function under a lock on (tenant, digest), so the rule holds under
any number of concurrent submitters (docs/design.md, invariant 12).

A missing key and a key whose value is null are different values. Once the
reaper moves a finished job to history (its archive window), it no longer
blocks anything.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Final

from jobqueue.models import UNIQUE_STATES_DEFAULT, JobStatus, NewJob, Unique

MAX_KEYS: Final = 32
MAX_KEY_LENGTH: Final = 200
# Ten years: beyond that "forever" (no period) says it better.
MAX_PERIOD_SECONDS: Final = 10 * 365 * 86_400


def of(
    keys: Iterable[str] | None = None,
    period_seconds: int | None = None,
    states: Iterable[str | JobStatus] | None = None,
) -> Unique:
    """A `Unique` from the entrances' plain values (API, client, CLI).

    Raises ValueError for a state that does not exist; everything else is
    checked by `problem`, so every entrance refuses the same things."""
    parsed = UNIQUE_STATES_DEFAULT if states is None else frozenset(
        JobStatus(s) for s in states
    )
    return Unique(
        keys=None if keys is None else tuple(keys),
        period_seconds=period_seconds,
        states=parsed,
    )


def problem(job: NewJob) -> str | None:
    """Why `job.unique` cannot be used, or None (also None without it)."""
    u = job.unique
    if u is None:
        return None
    if u.keys is not None:
        if not 1 <= len(u.keys) <= MAX_KEYS:
            return f"unique.keys must name 1 to {MAX_KEYS} keys (omit it for the whole data)"
        if any(not isinstance(k, str) or not 1 <= len(k) <= MAX_KEY_LENGTH for k in u.keys):
            return f"unique.keys must be strings of 1 to {MAX_KEY_LENGTH} characters"
        if not isinstance(job.data, dict):
            return "unique.keys needs data that is a JSON object"
    p = u.period_seconds
    if p is not None and (
        not isinstance(p, int) or isinstance(p, bool) or not 1 <= p <= MAX_PERIOD_SECONDS
    ):
        return f"unique.period_seconds must be an integer from 1 to {MAX_PERIOD_SECONDS}"
    if not u.states or not all(isinstance(s, JobStatus) for s in u.states):
        return "unique.states must name at least one job state"
    return None


def key(job: NewJob) -> str:
    """The digest stored in jobs.unique_key; `job.unique` must be set and valid."""
    assert job.unique is not None
    keys = job.unique.keys
    selected = job.data if keys is None else {k: job.data[k] for k in keys if k in job.data}
    canonical = json.dumps(
        [job.type, job.queue, keys is None, selected],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def states(job: NewJob) -> list[str]:
    """The states as the database function takes them, in a stable order."""
    assert job.unique is not None
    return sorted(s.value for s in job.unique.states)
