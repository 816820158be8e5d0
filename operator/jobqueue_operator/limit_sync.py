"""A JobQueue's `spec.limits` in its database (docs/design.md, invariant 14).

The JobQueue owns the limits it declares (`owner` = "namespace/name"):
each reconcile writes every declared one and deletes the owner's limits no
longer declared (on this queue or, after a change of spec.queue, another).
Limits made through the API are never touched; a declared name that one
of those already holds is reported, not taken over.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from jobqueue import errors
from jobqueue import limits as rules
from jobqueue.db import Pool, limits
from jobqueue.limits import Limit, LimitSpec, Per, Rate
from jobqueue_operator import models


def declared(spec: models.JobQueueSpec) -> list[LimitSpec]:
    """The runtime's specs of `spec.limits` (pure)."""
    return [
        LimitSpec(
            name=x.name, per=Per(x.per), path=None if x.path is None else tuple(x.path),
            rate=None if x.rate is None else Rate(x.rate.count, x.rate.period_seconds,
                                                  x.rate.burst),
            max_concurrent=x.max_concurrent,
        )
        for x in spec.limits
    ]


def problems(spec: models.JobQueueSpec, queue: str) -> list[str]:
    """What the CRD's schema could not check (a rate or a cap; path iff per data)."""
    found = []
    for x in declared(spec):
        try:
            rules.check(queue, x)
        except errors.InvalidInput as exc:
            found.append(f"limits[{x.name}]: {exc}")
    return found


@dataclass(frozen=True, slots=True)
class Synced:
    limits: list[Limit]
    problems: list[str] = field(default_factory=list)


async def sync(pool: Pool, *, owner: str, queue: str, wanted: Sequence[LimitSpec]) -> Synced:
    """Write `wanted` on `queue`, delete the owner's others; a limit that
    cannot be written (a name the API holds) is reported, not fatal."""
    failed = []
    for x in wanted:
        try:
            await limits.put(pool, queue=queue, spec=x, owner=owner)
        except (errors.InvalidTransition, errors.InvalidInput) as exc:
            failed.append(f"limits[{x.name}]: {exc}")
    await limits.delete_undeclared(pool, owner=owner, keep=[(queue, x.name) for x in wanted])
    return Synced(await limits.list_limits(pool, queue=None, owner=owner), failed)


async def forget(pool: Pool, owner: str) -> int:
    """The JobQueue is gone: so are its limits; how many went. A step of queue_rows."""
    return len(await limits.delete_undeclared(pool, owner=owner, keep=[]))
