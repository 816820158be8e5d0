"""Chaos on real processes and a real Postgres: 2,000 jobs, four workers, a
reaper; workers SIGKILLed at random and restarted, one worker SIGSTOPped
past its leases and resumed, the reaper killed once, Postgres restarted once.

At the end every job has succeeded exactly as the records say: none lost,
none stuck; a job ran more than once only after its lease was lost (the
reaper wrote "lease expired" for every earlier attempt); the paused
worker's late results changed nothing.
"""

from __future__ import annotations

import asyncio
import random
import signal
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from jobqueue import db, errors
from jobqueue.db import jobs, migrations, stats, tenants
from jobqueue.embedded import EmbeddedPostgres
from jobqueue.models import Job, JobStatus, NewJob, TenantId, TenantQuotas
from tests.chaos.handlers import Executions
from tests.chaos.procs import Proc, until

SEED = 20261129
JOBS = 2000
WORKERS = 4
LEASE = 3
T = TypeVar("T")

pytestmark = pytest.mark.timeout(240)


@pytest.fixture
async def server() -> AsyncIterator[EmbeddedPostgres]:
    # A server of its own: restarting it must not disturb other tests. Durable,
    # because an immediate stop may drop commits that synchronous_commit=off
    # had already acknowledged, and that would be Postgres's loss, not ours.
    pg = EmbeddedPostgres(durable=True)
    await asyncio.to_thread(pg.start)
    try:
        yield pg
    finally:
        await asyncio.to_thread(pg.cleanup)


async def retrying(call: Callable[[], Awaitable[T]]) -> T:
    """The test's own reads ride out the restart too."""
    for _ in range(200):
        try:
            return await call()
        except errors.DatabaseUnavailable:
            await asyncio.sleep(0.1)
    raise AssertionError("database did not come back")


async def all_jobs(pool: db.Pool, tenant: TenantId) -> list[Job]:
    out: list[Job] = []
    page = 1
    while True:
        got = await jobs.list_jobs(pool, tenant_id=tenant, page=page, page_size=1000)
        out += got.jobs
        if len(out) >= got.total:
            return out
        page += 1


def worker_id(p: Proc) -> str | None:
    for e in p.events(p.generation):
        if e.get("event") == "worker starting":
            return str(e["worker_id"])
    return None


async def test_no_job_is_lost_or_run_twice_under_chaos(
    server: EmbeddedPostgres, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    dsn = server.dsn
    conn = await db.connect(dsn)
    await migrations.migrate(conn)
    await conn.close()
    pool = await db.create_pool(dsn, min_size=1, max_size=4)
    tenant = TenantId("chaos")
    await tenants.upsert(pool, tenant_id=tenant, quotas=TenantQuotas(max_concurrent=1000))
    batch = [
        NewJob(type="chaos-record", data={"i": i, "ms": rng.randint(100, 400)},
               max_attempts=25, timeout_seconds=60)
        for i in range(JOBS)
    ]
    await jobs.submit_many(pool, tenant_id=tenant, jobs=batch)

    record = tmp_path / "executions.log"
    env = {"JOBQUEUE_CHAOS_LOG": str(record)}
    worker_args = ["worker", "--concurrency", "5", "--lease-seconds", str(LEASE),
                   "--poll-seconds", "0.5", "--grace-seconds", "5",
                   "--handlers", "tests.chaos.handlers"]
    workers = [Proc(f"worker{i}", worker_args, dsn=dsn, logdir=tmp_path, env=env)
               for i in range(WORKERS)]
    reaper = Proc("reaper", ["reaper", "--interval-seconds", "0.2", "--lease-seconds", "3"],
                  dsn=dsn, logdir=tmp_path)
    procs = [*workers, reaper]
    for p in procs:
        p.start()
    unexpected: list[str] = []
    killed: set[Proc] = set()
    # The schedule starts once every process is up (start-up takes seconds
    # on a busy machine), so each disruption lasts as long as planned.
    await until(lambda: all(worker_id(w) for w in workers), 60, "the workers to start")
    await until(lambda: any(e.get("event") == "became leader" for e in reaper.events()), 30,
                "the reaper to lead")
    began = time.monotonic()

    async def unfinished() -> int:
        async def count() -> int:
            return sum(r.jobs for r in await stats.depth(pool, tenant_id=tenant)
                       if not r.status.finished)
        return await retrying(count)

    async def at(second: float) -> None:
        await asyncio.sleep(max(0.0, began + second - time.monotonic()))
        for p in procs:  # nothing may die unless we killed it
            if p.popen is not None and not p.alive() and p not in killed:
                unexpected.append(f"{p.name} exited {p.popen.returncode}:\n{p.text()[-3000:]}")

    async def kill_and_restart(p: Proc, pause: float) -> None:
        killed.add(p)
        await asyncio.to_thread(p.kill)
        await asyncio.sleep(pause)
        p.start()
        killed.discard(p)

    try:
        # 1. Pause worker0 while it holds leases, for more than two lease periods.
        stopped = workers[0]
        stopped_id = worker_id(stopped)

        async def held_by_stopped() -> list[Job]:
            page = await jobs.list_jobs(pool, tenant_id=tenant, status=JobStatus.RUNNING,
                                        page_size=1000)
            return [j for j in page.jobs if j.lease_owner == stopped_id]

        await at(1)
        await until(held_by_stopped, 20, "worker0 to hold jobs")
        stopped.signal(signal.SIGSTOP)
        stopped_at = time.time()
        t = time.monotonic() - began  # the rest of the schedule counts from here
        # Statements it sent just before the stop still land; then it is frozen.
        await asyncio.sleep(0.5)
        frozen = {j.id: j.attempt for j in await held_by_stopped()}
        assert frozen, "worker0 held nothing when paused"
        await at(t + 1.5)
        await kill_and_restart(workers[1], rng.uniform(0.2, 1.0))
        await at(t + 4)
        await kill_and_restart(workers[2], rng.uniform(0.2, 1.0))
        await at(t + 2.5 * LEASE)
        stopped.signal(signal.SIGCONT)
        # 2. Postgres goes down hard for two seconds, with work in flight.
        await at(t + 2.5 * LEASE + 1.5)
        assert await unfinished() > 0, "the run finished before the restart"
        await asyncio.to_thread(server.stop, "immediate")
        await asyncio.sleep(2)
        await asyncio.to_thread(server.start)
        # 3. The reaper dies once; more workers die at random.
        await at(t + 2.5 * LEASE + 5.5)
        await kill_and_restart(reaper, 0.5)
        for second in (7.5, 10.5):
            await at(t + 2.5 * LEASE + second)
            await kill_and_restart(rng.choice(workers[1:]), rng.uniform(0.2, 1.0))
        assert await unfinished() > 0, "the run finished before the last kill"
        # 4. Everything settles.
        await until(lambda: _zero(unfinished), 150, "every job to finish")
        await at(time.monotonic() - began)
    finally:
        codes = {p.name: p.stop() for p in procs if p.alive()}
        elapsed = time.monotonic() - began
        if unexpected or codes != {p.name: 0 for p in procs}:
            await pool.close()
    assert not unexpected, unexpected
    assert codes == {p.name: 0 for p in procs}, codes  # clean stops, no crash

    final = await retrying(lambda: all_jobs(pool, tenant))
    await pool.close()
    execs = Executions(record)
    assert len(final) == JOBS
    assert {j.status for j in final} == {JobStatus.SUCCEEDED}, "lost or stuck jobs"

    starts: dict[str, dict[int, list[str]]] = defaultdict(lambda: defaultdict(list))
    for job_id, attempt, worker, _pid in execs.starts:
        starts[job_id][attempt].append(worker)
    reruns = 0
    for job in final:
        runs = starts[str(job.id)]
        # The winning attempt ran, and its result is the one stored.
        assert job.result == {"worker": runs[job.attempt][0], "attempt": job.attempt}, job.id
        expired = {e["attempt"] for e in job.errors if e["error"] == "lease expired"}
        for attempt, ran_by in runs.items():
            assert len(ran_by) == 1, f"{job.id} attempt {attempt} ran twice: {ran_by}"
            if attempt != job.attempt:
                # An earlier run is only allowed if its lease was lost.
                assert attempt in expired, f"{job.id} re-ran without losing attempt {attempt}"
                reruns += 1
        assert job.attempt not in expired
    # The paused worker's jobs went to others, and its late results were dropped.
    stopped_log = list(stopped.events())
    lost = {e.get("job_id") for e in stopped_log if e.get("event") == "lease lost"}
    by_id = {j.id: j for j in final}
    for job_id, attempt in frozen.items():
        job = by_id[job_id]
        why = (f"{job_id} frozen at attempt {attempt} (SIGSTOP at {stopped_at:.3f}): "
               f"{job.result} {job.errors} {execs.of(job_id)}")
        assert job.attempt > attempt and job.result["worker"] != stopped_id, why
        assert str(job_id) in lost, f"worker0 never noticed it lost {job_id}"
    assert reruns >= len(frozen)
    print(f"\nchaos: {JOBS} jobs in {elapsed:.1f}s, {len(execs.starts)} executions, "
          f"{reruns} re-runs after lost leases, {len(frozen)} frozen with worker0")


async def _zero(unfinished: Callable[[], Awaitable[int]]) -> bool:
    return await unfinished() == 0


