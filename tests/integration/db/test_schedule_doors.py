"""A schedule's fires meet the doors a submission meets, on real PostgreSQL:
the tenant's backlog cap (max_queued) and its enabled flag refuse a fire
time, which is dropped and recorded on the schedule, never retried; the
API's rate limit is not spent by fires (docs/design.md, invariant 13)."""

from __future__ import annotations

import dataclasses

import pytest
from structlog.testing import capture_logs

from jobqueue import db, errors
from jobqueue.db import jobs, leases, ratelimit, schedules, tenants
from jobqueue.models import TenantId, WorkerId
from jobqueue.observability import metrics
from jobqueue.reaper.scheduler import FireResult
from jobqueue.scheduling import SkipReason
from tests import factories
from tests.integration.db.test_schedules import EVERY_MINUTE, rewind, scheduler


async def queued(pool: db.Pool, tenant: TenantId) -> int:
    return int(await pool.fetchval(
        "SELECT count(*) FROM jobs WHERE tenant_id = $1 AND status = 'queued'", tenant))


def counted(outcome: str) -> float:
    return float(metrics.SCHEDULE_FIRES.labels(outcome)._value.get())  # type: ignore[attr-defined]


async def fire_times_due(pool: db.Pool, minutes: int) -> int:
    """Fire times of an every-minute schedule rewound `minutes`, as of now."""
    return int(await pool.fetchval(
        "SELECT count(*) FROM generate_series(date_trunc('minute', now())"
        " - make_interval(mins => $1), now(), interval '1 minute')", minutes))


async def test_a_full_backlog_refuses_fires_records_them_and_does_not_retry(
    pool: db.Pool,
) -> None:
    t = await factories.tenant(pool, max_queued=5)
    for _ in range(3):
        await factories.submit(pool, t.id)
    await schedules.upsert(pool, tenant_id=t.id, spec=EVERY_MINUTE)
    await rewind(pool, "tick", 9)
    s = scheduler(pool)
    before = counted("backlog_full")
    with capture_logs() as logged:
        first = await s.run_once()
    due = await fire_times_due(pool, 9)
    # Two fit under the cap; every later fire time is refused and dropped.
    assert first.fired == 2 and first.refused in (due - 2, due - 1)
    assert await queued(pool, t.id) == 5
    assert counted("backlog_full") - before == first.refused
    row = await schedules.get(pool, tenant_id=t.id, name="tick")
    assert row.last_skip_reason is SkipReason.BACKLOG_FULL
    assert row.skipped_fires == first.refused
    assert row.last_fire_at is not None and row.last_skipped_at is not None
    assert row.last_skipped_at > row.last_fire_at
    assert row.next_fire_at > await pool.fetchval("SELECT now()")
    # Not retried: the next pass has nothing due (or one new minute, refused).
    with capture_logs() as logged_again:
        again = await s.run_once()
    assert again.fired == 0 and again.refused <= 1
    # Said once when the refusals start, not at every fire time or pass.
    warned = [e for e in logged + logged_again if e["event"].startswith("schedule fire refused")]
    assert [(e["log_level"], e["reason"]) for e in warned] == [("warning", "backlog_full")]
    assert await queued(pool, t.id) == 5
    # The API's door agrees: the backlog is full.
    with pytest.raises(errors.QuotaExceeded):
        await jobs.submit(pool, tenant_id=t.id, job=factories.new_job(), max_queued=5)


async def test_fires_resume_when_the_backlog_drains_and_history_stays(pool: db.Pool) -> None:
    t = await factories.tenant(pool, max_queued=2)
    await schedules.upsert(pool, tenant_id=t.id, spec=EVERY_MINUTE)
    await rewind(pool, "tick", 4)
    full = await scheduler(pool).run_once()
    assert full.fired == 2 and full.refused >= 3
    # Leased jobs are no longer queued: the backlog has room again.
    await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=2,
                       lease_seconds=60)
    before = await schedules.get(pool, tenant_id=t.id, name="tick")
    await rewind(pool, "tick", 0)  # this minute's fire time again: it was refused
    resumed = await scheduler(pool).run_once()
    assert resumed.fired >= 1
    row = await schedules.get(pool, tenant_id=t.id, name="tick")
    assert row.last_job_id != before.last_job_id
    assert await queued(pool, t.id) == resumed.fired
    assert row.last_fire_at is not None and row.last_skipped_at is not None
    assert row.last_fire_at >= row.last_skipped_at
    assert row.last_skip_reason is SkipReason.BACKLOG_FULL  # the last refusal, kept
    assert row.skipped_fires == full.refused + resumed.refused


async def test_a_disabled_tenants_schedules_fire_nothing(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await schedules.upsert(pool, tenant_id=t.id, spec=EVERY_MINUTE)
    await tenants.update(pool, tenant_id=t.id, enabled=False)
    await rewind(pool, "tick", 2)
    result = await scheduler(pool).run_once()
    assert result.fired == 0 and result.refused >= 3
    assert await pool.fetchval("SELECT count(*) FROM jobs WHERE tenant_id = $1", t.id) == 0
    row = await schedules.get(pool, tenant_id=t.id, name="tick")
    assert (row.last_skip_reason, row.skipped_fires) == (
        SkipReason.TENANT_DISABLED, result.refused)


async def test_fires_do_not_spend_the_api_rate_limit(pool: db.Pool) -> None:
    t = await factories.tenant(pool, rate_per_minute=1, rate_burst=1)
    for i in range(3):
        await schedules.upsert(pool, tenant_id=t.id,
                               spec=dataclasses.replace(EVERY_MINUTE, name=f"s{i}"))
    await pool.execute("UPDATE schedules SET next_fire_at = date_trunc('minute', now())"
                       " - interval '3 minutes'")
    result = await scheduler(pool).run_once()
    assert result.fired >= 12 and result == FireResult(fired=result.fired)
    # The one request of the burst is still there for the tenant's client.
    assert (await ratelimit.take(pool, tenant_id=t.id)).allowed
    assert not (await ratelimit.take(pool, tenant_id=t.id)).allowed
