"""Three real `jobqueue reaper` processes on one database: one leads; killing
it with SIGKILL hands over within one lease period."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from jobqueue import db
from jobqueue.db import leaders, leases, schedules
from jobqueue.models import WorkerId
from jobqueue.scheduling import ScheduleSpec
from tests import factories
from tests.support.procs import REPO, Proc
from tests.support.wait import eventually

LEASE = 3.0
SLACK = 0.4  # this test's polling and process scheduling on a busy 2-core machine


def identity_of(p: Proc) -> str | None:
    for e in p.events():
        if e.get("event") == "reaper starting":
            return str(e["reaper_id"])
    return None


def became_leader(p: Proc) -> int:
    return sum(1 for e in p.events() if e.get("event") == "became leader")


async def holder(pool: db.Pool) -> tuple[str, int] | None:
    row = await leaders.get(pool, name="jobqueue-reaper")
    return (row.holder, row.transitions) if row else None


async def test_one_reaper_of_three_leads_and_sigkill_hands_over(
    dsn: str, pool: db.Pool, tmp_path: Path
) -> None:
    procs = [
        Proc(f"reaper{i}", ["reaper", "--leader-lease-seconds", str(LEASE), "--interval-seconds",
                            "0.2"], dsn=dsn, logdir=tmp_path).start()
        for i in range(3)
    ]
    try:
        await eventually(lambda: all(identity_of(p) for p in procs),
                         timeout=20, what="three reapers")
        ids = {identity_of(p): p for p in procs}
        await eventually(lambda: holder(pool), timeout=10, what="a leader")
        # Watch for two lease periods: always exactly one leader, the same one.
        seen = set()
        for _ in range(20):
            h = await holder(pool)
            assert h is not None
            seen.add(h[0])
            await asyncio.sleep(LEASE / 10)
        assert len(seen) == 1
        leader_id = seen.pop()
        leader = ids[leader_id]
        assert [became_leader(p) for p in procs].count(1) == 1
        assert became_leader(leader) == 1
        transitions = (await holder(pool) or ("", -1))[1]

        leader.signal(9)
        killed_at = time.monotonic()

        async def successor_row() -> tuple[str, int] | None:
            h = await holder(pool)
            return h if h is not None and h[0] != leader_id else None

        # The row names a new holder; that process says so in its log too.
        new_id, new_transitions = await eventually(successor_row,
                                                   timeout=LEASE * 2, what="a new holder")
        handover = time.monotonic() - killed_at
        print(f"\nhandover after SIGKILL: {handover:.2f} s (lease {LEASE} s)")
        assert handover < LEASE + SLACK, handover
        assert new_transitions == transitions + 1
        successor = ids[new_id]
        assert successor is not leader
        await eventually(lambda: became_leader(successor) == 1,
                         timeout=2, what="the successor's log")
        others = [p for p in procs if p not in (leader, successor)]
        assert [became_leader(p) for p in others] == [0]
    finally:
        codes = [p.stop() for p in procs if p.alive()]
    assert codes == [0, 0]  # the survivors stop cleanly on SIGTERM


async def reaper_once(dsn: str) -> Any:
    """`jobqueue reaper --once` as a real process: the JSON it printed."""
    out = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "jobqueue.cli", "reaper", "--once"],
        capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**os.environ, "DATABASE_URL": dsn})
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


async def test_reaper_once_prints_what_it_did(dsn: str, pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await factories.submit(pool, t.id)
    await factories.submit(pool, t.id, max_attempts=1)
    await leases.lease(pool, queue="default", worker_id=WorkerId("gone"), limit=2,
                       lease_seconds=0.1)
    # A schedule two fire times behind: --once fires both.
    await schedules.upsert(pool, tenant_id=t.id, spec=ScheduleSpec(
        name="tick", cron="* * * * *", type="tick"))
    await pool.execute("UPDATE schedules SET next_fire_at = date_trunc('minute', now())"
                       " - interval '1 minute'")
    await asyncio.sleep(0.2)
    did = await reaper_once(dsn)
    fired = await pool.fetchval("SELECT count(*) FROM jobs WHERE type = 'tick'")
    assert fired >= 2  # a minute ago and this minute (and the next, had it begun meanwhile)
    assert did == {
        "requeued": 1, "dead_lettered": 1, "archived": 0, "expired": 0,
        "partitions_dropped": 0,
        "schedules": {"fired": fired, "overlapped": 0, "missed": 0, "refused": 0}}
    # Again: no fire time fires twice (only a minute begun since could fire).
    assert (await reaper_once(dsn))["schedules"]["fired"] <= 1
    assert await pool.fetchval("SELECT count(DISTINCT idempotency_key) = count(*) FROM jobs"
                               " WHERE type = 'tick'")
