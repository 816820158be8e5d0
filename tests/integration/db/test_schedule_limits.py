"""Scheduled fires against the tenant's limits (docs/design.md, invariant 13):
the backlog cap holds (a fire over it is refused and recorded with its
reason, the schedule moves on), a disabled tenant's schedules fire nothing,
and the request rate is not theirs to spend."""

from __future__ import annotations

import dataclasses

from jobqueue import db
from jobqueue.cron import OverlapPolicy
from jobqueue.db import jobs, ratelimit, schedules, tenants
from jobqueue.models import TenantId
from jobqueue.observability import logging as obslog
from jobqueue.observability import metrics
from jobqueue.reaper.scheduler import Scheduler
from jobqueue.scheduling import ScheduleSpec
from tests import factories

EVERY_MINUTE = ScheduleSpec(name="tick", cron="* * * * *", type="tick", data={"a": 1})


def scheduler(pool: db.Pool) -> Scheduler:
    return Scheduler(pool, grace_seconds=3600, batch=100, interval=1.0,
                     log=obslog.get_logger("test"))


async def rewind(pool: db.Pool, minutes: int) -> None:
    """As if the reaper had been away: the next fire time `minutes` ago."""
    await pool.execute("UPDATE schedules SET next_fire_at = date_trunc('minute', now())"
                       " - make_interval(mins => $1)", minutes)


async def fired_keys(pool: db.Pool, tenant: TenantId) -> list[str]:
    rows = await pool.fetch("SELECT idempotency_key FROM jobs WHERE tenant_id = $1", tenant)
    return [r[0] for r in rows]


def _counted(outcome: str) -> float:
    value = metrics.SCHEDULE_FIRES.labels(outcome)._value.get()  # type: ignore[attr-defined]
    return float(value)


async def _queued(pool: db.Pool, tenant: TenantId) -> int:
    return int(await pool.fetchval(
        "SELECT count(*) FROM jobs WHERE tenant_id = $1 AND status = 'queued'", tenant))


async def test_a_fire_over_the_backlog_cap_is_refused_recorded_and_passed(
    pool: db.Pool,
) -> None:
    t = await factories.tenant(pool, max_queued=3)
    await factories.backlog(pool, t.id, 2)
    await schedules.upsert(pool, tenant_id=t.id, spec=EVERY_MINUTE)
    await rewind(pool, 4)  # five fire times due: 4 minutes ago to now
    before = _counted("backlog")
    result = await scheduler(pool).run_once()
    # One fits under the cap of three; the rest are refused, not queued up.
    assert (result.fired, result.refused) == (1, 4)
    assert await _queued(pool, t.id) == 3
    assert _counted("backlog") - before == 4
    s = await schedules.get(pool, tenant_id=t.id, name="tick")
    assert s.last_skip_reason == "backlog_full"
    assert s.last_skipped_at is not None and s.last_fire_at is not None
    assert s.last_skipped_at > s.last_fire_at  # the fire times after the first
    assert s.next_fire_at > await pool.fetchval("SELECT now()")  # moved on, not stuck

    # Room again: the next fire time fires; the last skip stays on record.
    made = await jobs.list_jobs(pool, tenant_id=t.id, page_size=10)
    await jobs.cancel(pool, job_id=made.jobs[-1].id)
    await rewind(pool, 0)
    assert (await scheduler(pool).run_once()).fired == 1
    after = await schedules.get(pool, tenant_id=t.id, name="tick")
    assert after.last_fire_at is not None and after.last_fire_at >= s.last_skipped_at
    assert after.last_skip_reason == "backlog_full"


async def test_a_disabled_tenants_schedules_fire_nothing(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await schedules.upsert(pool, tenant_id=t.id, spec=EVERY_MINUTE)
    await tenants.update(pool, tenant_id=t.id, enabled=False)
    await rewind(pool, 1)
    result = await scheduler(pool).run_once()
    assert (result.fired, result.refused) == (0, 2)
    assert await fired_keys(pool, t.id) == []
    s = await schedules.get(pool, tenant_id=t.id, name="tick")
    assert s.last_skip_reason == "tenant_disabled"


async def test_fires_do_not_spend_the_request_rate(pool: db.Pool) -> None:
    t = await factories.tenant(pool, rate_per_minute=1, rate_burst=1)
    assert (await ratelimit.take(pool, tenant_id=t.id)).allowed
    assert not (await ratelimit.take(pool, tenant_id=t.id)).allowed  # the API would say 429
    await schedules.upsert(pool, tenant_id=t.id, spec=EVERY_MINUTE)
    await rewind(pool, 2)
    assert (await scheduler(pool).run_once()).fired == 3


async def test_an_overlap_skip_is_recorded_too(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await schedules.upsert(pool, tenant_id=t.id, spec=dataclasses.replace(
        EVERY_MINUTE, overlap=OverlapPolicy.SKIP))
    await rewind(pool, 1)
    result = await scheduler(pool).run_once()
    assert (result.fired, result.overlapped, result.refused) == (1, 1, 0)
    s = await schedules.get(pool, tenant_id=t.id, name="tick")
    assert s.last_skip_reason == "overlap"
