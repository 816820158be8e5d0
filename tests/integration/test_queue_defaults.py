"""A queue's default max_attempts through the real worker and the CLI."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from jobqueue import db
from jobqueue.db import jobs, queues
from jobqueue.models import JobId, JobStatus, NewJob
from jobqueue.worker.handlers import JobContext
from tests import factories
from tests.support.cli import cli
from tests.support.worker import fresh_queue, registry_with, running, settled


async def test_a_worker_dead_letters_after_the_queues_default_attempts(
    dsn: str, pool: db.Pool
) -> None:
    t = await factories.tenant(pool)
    q = fresh_queue()
    await queues.configure(pool, queue=q, default_max_attempts=2)
    calls: list[tuple[str, int]] = []

    async def broken(ctx: JobContext, data: Any) -> Any:
        calls.append((data["who"], ctx.attempt))
        raise RuntimeError(f"attempt {ctx.attempt} failed")

    omitted = await jobs.submit(
        pool, tenant_id=t.id, job=NewJob(type="broken", data={"who": "omitted"}, queue=q)
    )
    explicit = await jobs.submit(
        pool,
        tenant_id=t.id,
        job=NewJob(type="broken", data={"who": "explicit"}, queue=q, max_attempts=3),
    )
    ids = [omitted.job.id, explicit.job.id]
    async with running(dsn, registry_with(broken=broken), queue=q, poll_seconds=0.1,
                       backoff_base_seconds=0.05, backoff_cap_seconds=0.2):
        done = await settled(pool, ids)
    assert [(j.status, j.attempt, j.max_attempts) for j in done] == [
        (JobStatus.DLQ, 2, 2),
        (JobStatus.DLQ, 3, 3),
    ]
    assert sorted(calls) == [("explicit", 1), ("explicit", 2), ("explicit", 3),
                             ("omitted", 1), ("omitted", 2)]


async def test_cli_submit_without_max_attempts_takes_the_queues_default(
    dsn: str, pool: db.Pool
) -> None:
    t = await factories.tenant(pool)
    await queues.configure(pool, queue="cli-q", default_max_attempts=4)

    def submit(*extra: str) -> dict[str, Any]:
        done = cli(dsn, "submit", "echo", "--tenant", t.id, "--queue", "cli-q", *extra)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)  # type: ignore[no-any-return]

    first = await asyncio.to_thread(submit, "--idempotency-key", "c1")
    assert first["max_attempts"] == 4 and first["replayed"] is False
    again = await asyncio.to_thread(submit, "--idempotency-key", "c1")
    assert again["replayed"] is True and again["id"] == first["id"]
    explicit = await asyncio.to_thread(submit, "--max-attempts", "6")
    assert explicit["max_attempts"] == 6
    stored = await jobs.get(pool, job_id=JobId(uuid.UUID(first["id"])))
    assert stored.max_attempts == 4
