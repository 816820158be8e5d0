"""Schedules: create, replace, list, delete, and fire (docs/design.md, invariant 13).

Fire times are computed by the pure `jobqueue.cron` from the database's
clock; every write that moves a schedule on is compare-and-set on its
next fire time, so any number of reapers may race without firing a time
twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from jobqueue import cron, errors, scheduling
from jobqueue.db import Executor, Record, queries, translate
from jobqueue.models import Priority, TenantId
from jobqueue.scheduling import Schedule, ScheduleSpec, SkipReason

Q = queries.load("schedules")


def _schedule(r: Record) -> Schedule:
    spec = ScheduleSpec(
        name=r["name"], cron=r["cron"], timezone=r["timezone"], type=r["type"],
        data=r["payload"], queue=r["queue"], priority=Priority(r["priority"]),
        max_attempts=r["max_attempts"], overlap=cron.OverlapPolicy(r["overlap"]),
        missed=cron.MissedPolicy(r["missed"]),
    )
    return Schedule(
        id=r["id"], tenant_id=TenantId(r["tenant_id"]), spec=spec, owner=r["owner"],
        next_fire_at=r["next_fire_at"], last_fire_at=r["last_fire_at"],
        last_job_id=r["last_job_id"], created_at=r["created_at"], updated_at=r["updated_at"],
        last_skipped_at=r["last_skipped_at"], last_skip_reason=_reason(r["last_skip_reason"]),
        skipped_fires=r["skipped_fires"],
    )


def _reason(value: str | None) -> SkipReason | None:
    return None if value is None else SkipReason(value)


@translate
async def upsert(
    conn: Executor, *, tenant_id: TenantId, spec: ScheduleSpec, owner: str | None = None
) -> tuple[Schedule, bool]:
    """Create or replace; (the schedule, whether it is new).

    A schedule of another owner (a JobQueue's, seen from the API, or the
    API's, seen from a JobQueue) is refused with InvalidTransition. Keeps
    the next fire time unless the expression or zone changed.
    """
    parsed = scheduling.check(spec)
    first = parsed.after(await conn.fetchval(Q["now"]))
    r = await conn.fetchrow(
        Q["upsert"], tenant_id, spec.name, spec.cron, spec.timezone, spec.queue, spec.type,
        spec.data, int(spec.priority), spec.max_attempts, spec.overlap.value,
        spec.missed.value, owner, first,
    )
    if r is None:
        current = await get(conn, tenant_id=tenant_id, name=spec.name)
        raise errors.InvalidTransition(_managed(current))
    return _schedule(r), bool(r["created"])


def _managed(s: Schedule) -> str:
    if s.owner is None:
        return f"schedule {s.spec.name} was made through the API or CLI; delete it there first"
    return f"schedule {s.spec.name} is declared by JobQueue {s.owner}; change it there"


@translate
async def get(conn: Executor, *, tenant_id: TenantId, name: str) -> Schedule:
    r = await conn.fetchrow(Q["get"], tenant_id, name)
    if r is None:
        raise errors.NotFound(f"schedule {name} not found")
    return _schedule(r)


@translate
async def list_schedules(
    conn: Executor, *, tenant_id: TenantId | None, owner: str | None = None
) -> list[Schedule]:
    """By tenant and name; `tenant_id` None lists every tenant's (admin)."""
    return [_schedule(r) for r in await conn.fetch(Q["list"], tenant_id, owner)]


@translate
async def delete(
    conn: Executor, *, tenant_id: TenantId, name: str, owner: str | None = None
) -> None:
    """Delete one of `owner`'s schedules; its jobs already fired stay."""
    if await conn.fetchval(Q["delete"], tenant_id, name, owner) is None:
        current = await get(conn, tenant_id=tenant_id, name=name)  # NotFound if absent
        raise errors.InvalidTransition(_managed(current))


@translate
async def delete_undeclared(
    conn: Executor, *, owner: str, keep: Sequence[tuple[TenantId, str]]
) -> list[tuple[TenantId, str]]:
    """Delete `owner`'s schedules not in `keep`; the (tenant, name) deleted."""
    found = await conn.fetch(Q["delete_undeclared"], owner, [f"{t}/{n}" for t, n in keep])
    return [(TenantId(r["tenant_id"]), r["name"]) for r in found]


@dataclass(frozen=True, slots=True)
class Due:
    schedule: Schedule
    now: datetime  # the database's clock when it was read


@translate
async def due(conn: Executor, *, limit: int) -> list[Due]:
    """Schedules whose next fire time has come, oldest first."""
    return [Due(_schedule(r), r["db_now"]) for r in await conn.fetch(Q["due"], limit)]


@dataclass(frozen=True, slots=True)
class Fired:
    job_id: uuid.UUID | None  # None: nothing inserted (skipped, or only advanced)
    skipped: SkipReason | None  # why a fire time made no job


@translate
async def fire(
    conn: Executor,
    *,
    schedule_id: uuid.UUID,
    expected: datetime,
    fire_time: datetime | None,
    next_fire_at: datetime,
) -> Fired | None:
    """Fire `fire_time` (None: only advance) and move the schedule to
    `next_fire_at`, if its next fire time is still `expected`; None if not.

    A fire time the overlap policy, a disabled tenant or the tenant's full
    backlog (max_queued) refuses is dropped and recorded on the schedule
    (`Fired.skipped`), never retried."""
    key = cron.idempotency_key(schedule_id, fire_time) if fire_time is not None else None
    r = await conn.fetchrow(Q["fire"], schedule_id, expected, fire_time, next_fire_at, key)
    if r is None:
        return None
    return Fired(job_id=r["job_id"], skipped=_reason(r["skip"]))
