"""Real `jobqueue reaper` processes fire schedules; SIGKILL of the leader in
the middle of firing loses no fire time and fires none twice
(docs/design.md, invariant 13)."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from jobqueue import db
from jobqueue.db import leaders, schedules
from jobqueue.scheduling import ScheduleSpec
from tests import factories
from tests.support.procs import Proc
from tests.support.wait import eventually

LEASE = 3.0
SCHEDULES = 30
MINUTES = 60  # fire times owed to each schedule when the test rewinds them


def identity_of(p: Proc) -> str | None:
    for e in p.events():
        if e.get("event") == "reaper starting":
            return str(e["reaper_id"])
    return None


def fired_in(p: Proc) -> int:
    return sum(int(e.get("fired", 0)) for e in p.events() if e.get("event") == "schedules fired")


async def caught_up(pool: db.Pool) -> bool:
    return bool(await pool.fetchval(
        "SELECT bool_and(next_fire_at > now()) FROM schedules"))


async def test_each_fire_time_fires_exactly_once_across_a_leader_kill(
    dsn: str, pool: db.Pool, tmp_path: Path
) -> None:
    t = await factories.tenant(pool)
    spec = ScheduleSpec(name="tick", cron="* * * * *", type="tick")
    for i in range(SCHEDULES):
        await schedules.upsert(pool, tenant_id=t.id, spec=dataclasses.replace(spec, name=f"s{i}"))
    # Nothing fires before the rewind below: a minute turning while the
    # reapers start would otherwise fire a time outside the owed hour.
    await pool.execute("UPDATE schedules SET next_fire_at = now() + interval '1 day'")
    env = {"JOBQUEUE_REAPER_SCHEDULE_GRACE_SECONDS": "86400",
           "JOBQUEUE_REAPER_SCHEDULE_BATCH": "5"}
    procs = [
        Proc(f"reaper{i}", ["reaper", "--leader-lease-seconds", str(LEASE), "--interval-seconds",
                            "0.2", "--log-format", "json"], dsn=dsn, logdir=tmp_path,
             env=env).start()
        for i in range(3)
    ]
    try:
        await eventually(lambda: all(identity_of(p) for p in procs), timeout=30,
                         what="three reapers")
        ids = {identity_of(p): p for p in procs}
        row = await eventually(lambda: leaders.get(pool, name="jobqueue-reaper"), timeout=15,
                               what="a leader")
        leader = ids[row.holder]
        # As if every reaper had been away: an hour of fire times are owed.
        start = await pool.fetchval(
            "UPDATE schedules SET next_fire_at = date_trunc('minute', now())"
            " - make_interval(mins => $1) RETURNING next_fire_at", MINUTES)

        async def some_fired() -> bool:
            return int(await pool.fetchval("SELECT count(*) FROM jobs")) >= 300

        await eventually(some_fired, timeout=60, what="the leader to start firing")
        leader.kill()
        at_kill = int(await pool.fetchval("SELECT count(*) FROM jobs"))
        killed_at = time.monotonic()
        await eventually(lambda: caught_up(pool), timeout=180, interval=0.2,
                         what="the new leader to fire the rest")
        print(f"\nfired {at_kill} before the kill; caught up "
              f"{time.monotonic() - killed_at:.1f} s after it")

        rows = await pool.fetch(
            "SELECT s.id, s.last_fire_at, count(j.id) AS jobs, count(DISTINCT j.idempotency_key)"
            " AS keys, min(j.idempotency_key) AS first"
            "  FROM schedules s LEFT JOIN jobs j"
            "    ON j.idempotency_key LIKE 'schedule:' || s.id || ':%'"
            " GROUP BY s.id, s.last_fire_at")
        assert len(rows) == SCHEDULES
        for r in rows:
            owed = int((r["last_fire_at"] - start).total_seconds() // 60) + 1
            assert owed >= MINUTES
            assert r["jobs"] == r["keys"] == owed, dict(r)  # none twice, none skipped
            assert r["first"].endswith(f"{start:%Y-%m-%dT%H:%M:%S}Z")
        total = int(await pool.fetchval("SELECT count(*) FROM jobs"))
        assert at_kill < total  # the kill landed in the middle of firing
        survivors = [p for p in procs if p is not leader]
        assert sum(fired_in(p) for p in survivors) > 0
    finally:
        codes = [p.stop() for p in procs if p.alive()]
    assert codes == [0, 0]
