"""Schedules on real PostgreSQL: storage rules, firing, missed-fire and
overlap policies, and racing schedulers (docs/design.md, invariant 13)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from jobqueue import db, errors
from jobqueue.cron import MissedPolicy, OverlapPolicy
from jobqueue.db import jobs, schedules
from jobqueue.models import JobStatus, TenantId
from jobqueue.observability import logging as obslog
from jobqueue.reaper.scheduler import Scheduler
from jobqueue.scheduling import ScheduleSpec, SkipReason
from tests import factories

EVERY_MINUTE = ScheduleSpec(name="tick", cron="* * * * *", type="tick", data={"a": 1})


def scheduler(pool: db.Pool, grace: float = 3600.0) -> Scheduler:
    return Scheduler(pool, grace_seconds=grace, batch=100, interval=1.0,
                     log=obslog.get_logger("test"))


async def rewind(pool: db.Pool, name: str, minutes: int) -> None:
    """As if the reaper had been away: the next fire time `minutes` ago."""
    await pool.execute(
        "UPDATE schedules SET next_fire_at = date_trunc('minute', now())"
        " - make_interval(mins => $2) WHERE name = $1", name, minutes)


async def fired_keys(pool: db.Pool, tenant: TenantId) -> list[str]:
    rows = await pool.fetch(
        "SELECT idempotency_key FROM jobs WHERE tenant_id = $1 ORDER BY idempotency_key", tenant)
    return [r[0] for r in rows]


async def test_create_replace_and_keep_the_next_fire_time(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    made, created = await schedules.upsert(pool, tenant_id=t.id, spec=EVERY_MINUTE)
    assert created and made.next_fire_at.second == 0 and made.last_fire_at is None
    await rewind(pool, "tick", 5)
    before = (await schedules.get(pool, tenant_id=t.id, name="tick")).next_fire_at
    same, created = await schedules.upsert(
        pool, tenant_id=t.id, spec=dataclasses.replace(EVERY_MINUTE, data={"a": 2}))
    assert not created and same.next_fire_at == before and same.spec.data == {"a": 2}
    hourly, _ = await schedules.upsert(
        pool, tenant_id=t.id, spec=dataclasses.replace(EVERY_MINUTE, cron="0 * * * *"))
    assert hourly.next_fire_at > before and hourly.next_fire_at.minute == 0


async def test_bad_specs_are_refused_and_change_nothing(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    bad = [
        dataclasses.replace(EVERY_MINUTE, cron="61 * * * *"),
        dataclasses.replace(EVERY_MINUTE, timezone="Mars/Olympus"),
        dataclasses.replace(EVERY_MINUTE, name="Bad_Name"),
        dataclasses.replace(EVERY_MINUTE, type="bad type"),
        dataclasses.replace(EVERY_MINUTE, max_attempts=0),
        dataclasses.replace(EVERY_MINUTE, data=None),
    ]
    for spec in bad:
        with pytest.raises(errors.InvalidInput):
            await schedules.upsert(pool, tenant_id=t.id, spec=spec)
    with pytest.raises(errors.TenantNotFound):
        await schedules.upsert(pool, tenant_id=TenantId("ghost"), spec=EVERY_MINUTE)
    assert await schedules.list_schedules(pool, tenant_id=None) == []


async def test_owners_guard_their_schedules_and_tenants_see_only_theirs(pool: db.Pool) -> None:
    a = await factories.tenant(pool)
    b = await factories.tenant(pool)
    await schedules.upsert(pool, tenant_id=a.id, spec=EVERY_MINUTE, owner="ns/jq")
    with pytest.raises(errors.InvalidTransition, match="JobQueue ns/jq"):
        await schedules.upsert(pool, tenant_id=a.id, spec=EVERY_MINUTE)
    with pytest.raises(errors.InvalidTransition):
        await schedules.delete(pool, tenant_id=a.id, name="tick")
    with pytest.raises(errors.NotFound):
        await schedules.delete(pool, tenant_id=b.id, name="tick")
    await schedules.upsert(pool, tenant_id=b.id, spec=EVERY_MINUTE)
    assert [s.tenant_id for s in await schedules.list_schedules(pool, tenant_id=b.id)] == [b.id]
    gone = await schedules.delete_undeclared(pool, owner="ns/jq", keep=[])
    assert gone == [(a.id, "tick")]
    assert [s.tenant_id for s in await schedules.list_schedules(pool, tenant_id=None)] == [b.id]


async def test_each_fire_time_within_the_grace_fires_once(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    made, _ = await schedules.upsert(pool, tenant_id=t.id, spec=EVERY_MINUTE)
    await rewind(pool, "tick", 4)
    s = scheduler(pool)
    first = await s.run_once()
    assert first.fired in (5, 6)  # 4 minutes ago .. now, and this minute if it has begun
    assert (await s.run_once()).fired == 0
    keys = await fired_keys(pool, t.id)
    assert len(keys) == len(set(keys)) == first.fired
    assert all(k.startswith(f"schedule:{made.id}:") for k in keys)
    after = await schedules.get(pool, tenant_id=t.id, name="tick")
    found = await jobs.get(pool, job_id=after.last_job_id)  # type: ignore[arg-type]
    assert found.type == "tick" and found.data == {"a": 1}
    assert after.last_fire_at is not None and after.next_fire_at > after.last_fire_at


async def test_missed_skip_fires_nothing_from_the_downtime(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await schedules.upsert(pool, tenant_id=t.id, spec=dataclasses.replace(
        EVERY_MINUTE, cron="0 * * * *", missed=MissedPolicy.SKIP))
    await pool.execute("UPDATE schedules SET next_fire_at = date_trunc('hour', now())"
                       " - interval '5 hours'")
    result = await scheduler(pool, grace=60).run_once()
    assert result.missed == 1
    s = await schedules.get(pool, tenant_id=t.id, name="tick")
    # The last hour's fire is more than a minute late unless the hour just began.
    assert len(await fired_keys(pool, t.id)) <= 1
    assert s.next_fire_at > await pool.fetchval("SELECT now()")


async def test_missed_run_once_fires_one_job_for_all_the_downtime(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await schedules.upsert(pool, tenant_id=t.id, spec=dataclasses.replace(
        EVERY_MINUTE, cron="0 0 * * *", missed=MissedPolicy.RUN_ONCE))
    await pool.execute("UPDATE schedules SET next_fire_at = date_trunc('day', now())"
                       " - interval '10 days'")
    result = await scheduler(pool, grace=60).run_once()
    assert (result.fired, result.missed) == (1, 1)
    keys = await fired_keys(pool, t.id)
    today = await pool.fetchval("SELECT to_char(date_trunc('day', now()), 'YYYY-MM-DD')")
    assert len(keys) == 1 and keys[0].endswith(f":{today}T00:00:00Z")
    s = await schedules.get(pool, tenant_id=t.id, name="tick")
    assert s.next_fire_at > await pool.fetchval("SELECT now()")
    assert (await scheduler(pool, grace=60).run_once()).fired == 0


async def test_overlap_skip_waits_for_the_last_fires_job_to_finish(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await schedules.upsert(pool, tenant_id=t.id, spec=dataclasses.replace(
        EVERY_MINUTE, overlap=OverlapPolicy.SKIP))
    await rewind(pool, "tick", 3)
    result = await scheduler(pool).run_once()
    assert result.fired == 1 and result.overlapped >= 3 and result.refused == 0
    only = await schedules.get(pool, tenant_id=t.id, name="tick")
    assert only.last_job_id is not None
    # Each skipped fire time is recorded on the schedule.
    assert (only.last_skip_reason, only.skipped_fires) == (SkipReason.OVERLAP, result.overlapped)
    await jobs.cancel(pool, job_id=only.last_job_id)  # type: ignore[arg-type]
    await rewind(pool, "tick", 1)
    assert (await scheduler(pool).run_once()).fired == 1
    assert len(await fired_keys(pool, t.id)) == 2


async def test_overlap_allow_fires_while_the_last_job_runs(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await schedules.upsert(pool, tenant_id=t.id, spec=EVERY_MINUTE)
    await rewind(pool, "tick", 3)
    result = await scheduler(pool).run_once()
    assert result.fired >= 4 and result.overlapped == 0
    statuses = await pool.fetch("SELECT DISTINCT status FROM jobs WHERE tenant_id = $1", t.id)
    assert [r[0] for r in statuses] == [JobStatus.QUEUED.value]


async def test_racing_schedulers_fire_each_time_exactly_once(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    for i in range(20):
        await schedules.upsert(pool, tenant_id=t.id,
                               spec=dataclasses.replace(EVERY_MINUTE, name=f"s{i}"))
    await pool.execute("UPDATE schedules SET next_fire_at = date_trunc('minute', now())"
                       " - interval '30 minutes'")
    racers = [scheduler(pool) for _ in range(4)]
    results = await asyncio.gather(*(r.run_once() for r in racers))
    keys = await fired_keys(pool, t.id)
    assert len(keys) == len(set(keys))
    assert sum(r.fired for r in results) == len(keys)
    per_schedule = await pool.fetch(
        "SELECT count(*) AS n FROM jobs WHERE tenant_id = $1"
        " GROUP BY split_part(idempotency_key, ':', 2)", t.id)
    assert len(per_schedule) == 20
    assert {r["n"] for r in per_schedule} <= {31, 32}  # 30 minutes ago .. now


async def test_a_deleted_tenant_takes_its_schedules(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await schedules.upsert(pool, tenant_id=t.id, spec=EVERY_MINUTE)
    await pool.execute("DELETE FROM tenants WHERE id = $1", t.id)
    assert await schedules.list_schedules(pool, tenant_id=None) == []
