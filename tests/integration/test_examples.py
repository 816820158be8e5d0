"""The README's handler example runs in a real worker process, as documented."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from jobqueue import db
from jobqueue.db import jobs
from jobqueue.models import Job, JobStatus, NewJob
from tests import factories
from tests.support.wait import eventually

ROOT = Path(__file__).resolve().parents[2]


async def test_example_handlers_run_in_a_worker_process(pool: db.Pool, dsn: str) -> None:
    t = await factories.tenant(pool)
    ok = await jobs.submit(pool, tenant_id=t.id, job=NewJob(type="greet", data={"name": "ada"}))
    bad = await jobs.submit(pool, tenant_id=t.id, job=NewJob(type="greet", data={}))
    summed = await jobs.submit(pool, tenant_id=t.id, job=NewJob(type="checksum",
                                                                 data={"text": "ab"}))
    env = {**os.environ, "DATABASE_URL": dsn, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "jobqueue.cli", "worker", "--queue", "default",
        "--handlers", "examples.handlers", "--concurrency", "2",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )
    try:
        async def finished() -> list[Job] | None:
            got = [await jobs.get(pool, job_id=j.job.id) for j in (ok, bad, summed)]
            return got if all(g.status.finished for g in got) else None

        got = await eventually(finished, timeout=30, interval=0.1,
                               what="the example jobs finished")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()[-2000:]
    g_ok, g_bad, g_sum = got
    assert g_ok.status is JobStatus.SUCCEEDED
    assert g_ok.result == {"greeting": "hello, ada", "job": str(ok.job.id)}
    assert g_bad.status is JobStatus.DLQ and g_bad.attempt == 1
    assert "data.name is required" in (g_bad.last_error or "")
    assert g_sum.result == {"sum": ord("a") + ord("b")}
