"""A handler that SIGKILLs its own worker every time: the reaper counts each
expired lease as an attempt, so the job lands in the DLQ after max_attempts
instead of crashing workers forever (docs/design.md, invariant 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobqueue import db
from jobqueue.db import jobs
from jobqueue.models import JobStatus, NewJob
from tests import factories
from tests.chaos.handlers import Executions
from tests.support.procs import Proc
from tests.support.wait import eventually

pytestmark = pytest.mark.timeout(120)


async def test_a_job_that_kills_its_worker_ends_in_the_dlq(
    dsn: str, pool: db.Pool, tmp_path: Path
) -> None:
    t = await factories.tenant(pool)
    bomb = (await jobs.submit(pool, tenant_id=t.id, job=NewJob(
        type="kill-own-process", max_attempts=3))).job
    record = tmp_path / "executions.log"
    worker = Proc("worker", ["worker", "--lease-seconds", "2", "--poll-seconds", "0.2",
                             "--handlers", "tests.chaos.handlers"],
                  dsn=dsn, logdir=tmp_path, env={"JOBQUEUE_CHAOS_LOG": str(record)})
    reaper = Proc("reaper", ["reaper", "--interval-seconds", "0.2", "--leader-election", "none"],
                  dsn=dsn, logdir=tmp_path)
    worker.start()
    reaper.start()
    deaths: list[int] = []
    try:
        async def dead_lettered() -> bool:
            if not worker.alive():  # a supervisor (Kubernetes) restarts it
                deaths.append(worker.wait(1))
                worker.start()
            return (await jobs.get(pool, job_id=bomb.id)).status is JobStatus.DLQ

        await eventually(dead_lettered, timeout=90, interval=0.1, what="the job in the DLQ")
    finally:
        worker.stop()
        assert reaper.stop() == 0
    job = await jobs.get(pool, job_id=bomb.id)
    assert job.attempt == 3 and job.finished_at is not None
    assert [e["error"] for e in job.errors] == ["lease expired"] * 3
    assert [e["attempt"] for e in job.errors] == [1, 2, 3]
    assert deaths == [-9, -9, -9]
    assert sorted(a for _, a, _, _ in Executions(record).starts) == [1, 2, 3]
