"""A JobQueue's `spec.schedules` in its database, and their fire times in its status.

The JobQueue owns the schedules it declares (`owner` = "namespace/name" in
the schedules table): each reconcile writes every declared one (keeping its
next fire time unless the expression or zone changed) and deletes the
owner's schedules no longer declared. Schedules made through the API or CLI
are never touched; a declared name that one of those already holds is
reported, not taken over. The reaper fires them (docs/design.md,
invariant 13).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jobqueue import errors, scheduling
from jobqueue.cron import MissedPolicy, OverlapPolicy
from jobqueue.db import Pool, schedules
from jobqueue.models import Priority, TenantId
from jobqueue.scheduling import Schedule, ScheduleSpec
from jobqueue_operator import models


def owner_of(namespace: str | None, name: str) -> str:
    return f"{namespace or ''}/{name}"


def declared(spec: models.JobQueueSpec, queue: str) -> list[tuple[TenantId, ScheduleSpec]]:
    """The runtime's specs of `spec.schedules` (pure)."""
    return [
        (TenantId(s.tenant), ScheduleSpec(
            name=s.name, cron=s.cron, timezone=s.timezone, type=s.type, data=s.data,
            queue=s.queue or queue, priority=Priority.parse(s.priority),
            max_attempts=s.max_attempts, overlap=OverlapPolicy(s.overlap),
            missed=MissedPolicy(s.missed),
        ))
        for s in spec.schedules
    ]


def problems(spec: models.JobQueueSpec, queue: str) -> list[str]:
    """What the CRD's schema could not check (cron fields, zones), by schedule."""
    found = []
    for tenant, s in declared(spec, queue):
        try:
            scheduling.check(s)
        except errors.InvalidInput as exc:
            found.append(f"schedules[{tenant}/{s.name}]: {exc}")
    return found


@dataclass(frozen=True, slots=True)
class Synced:
    schedules: list[Schedule]
    problems: list[str] = field(default_factory=list)


async def sync(
    pool: Pool, *, owner: str, wanted: Sequence[tuple[TenantId, ScheduleSpec]]
) -> Synced:
    """Write `wanted`, delete the owner's others; a schedule that cannot be
    written (unknown tenant, a name the API holds) is reported, not fatal."""
    failed = []
    for tenant, s in wanted:
        try:
            await schedules.upsert(pool, tenant_id=tenant, spec=s, owner=owner)
        except (errors.NotFound, errors.InvalidTransition, errors.InvalidInput) as exc:
            failed.append(f"schedules[{tenant}/{s.name}]: {exc}")
    await schedules.delete_undeclared(pool, owner=owner, keep=[(t, s.name) for t, s in wanted])
    return Synced(await schedules.list_schedules(pool, tenant_id=None, owner=owner), failed)


async def forget(pool: Pool, owner: str) -> int:
    """The JobQueue is gone: so are its schedules (jobs they fired stay);
    how many went. A step of queue_rows."""
    return len(await schedules.delete_undeclared(pool, owner=owner, keep=[]))


def status_of(found: Sequence[Schedule]) -> list[dict[str, Any]]:
    """status.schedules (pure); lastFireTime only once it fired, the skip
    fields only once a fire time made no job (the apiserver drops nulls
    inside a list, which would make kopf re-patch)."""

    def ts(v: Any) -> str:
        return str(v.isoformat().replace("+00:00", "Z"))

    out: list[dict[str, Any]] = []
    for s in found:
        item: dict[str, Any] = {"tenant": s.tenant_id, "name": s.spec.name,
                                "nextFireTime": ts(s.next_fire_at)}
        if s.last_fire_at is not None:
            item["lastFireTime"] = ts(s.last_fire_at)
        if s.last_skipped_at is not None and s.last_skip_reason is not None:
            item["lastSkipTime"] = ts(s.last_skipped_at)
            item["lastSkipReason"] = s.last_skip_reason.value
            item["skippedFires"] = s.skipped_fires
        out.append(item)
    return out
