"""Workers run in the test's own process, and the jobs they are given.

`running` starts a real `Worker` on the test's database and stops it the
way SIGTERM does, asserting a clean exit; `settled` waits for jobs to reach
an outcome (on the database, which the worker writes in its own time).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from prometheus_client import REGISTRY

from jobqueue import db
from jobqueue.db import jobs
from jobqueue.models import Job, JobId, NewJob, TenantId
from jobqueue.settings import DatabaseSettings, WorkerSettings
from jobqueue.worker import handlers
from jobqueue.worker.handlers import Registry
from jobqueue.worker.worker import Worker
from tests.support.wait import eventually

_queues = itertools.count()


def fresh_queue() -> str:
    # Metrics are process-wide; a queue of its own keeps each test's counts apart.
    return f"wq-{next(_queues)}-{int(time.time() * 1000) % 100000}"


@asynccontextmanager
async def running(
    dsn: str, registry: Registry, *, listen: bool = True, **settings: Any
) -> AsyncIterator[Worker]:
    worker = Worker(
        dsn=dsn,
        settings=WorkerSettings(**settings),
        registry=registry,
        database=DatabaseSettings(listen=listen),
    )
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.request_stop()
        assert await asyncio.wait_for(task, 30) == 0


async def settled(pool: db.Pool, ids: list[JobId], timeout: float = 15.0) -> list[Job]:
    async def done() -> bool:
        got = [await jobs.get(pool, job_id=i) for i in ids]
        return all(j.status.finished for j in got)

    await eventually(done, timeout=timeout, what="every job finished")
    return [await jobs.get(pool, job_id=i) for i in ids]


def registry_with(**fns: Callable[..., Any]) -> Registry:
    reg = Registry()
    for name, fn in fns.items():
        reg.add(name.replace("_", "-"), fn)
    return handlers.load("", registry=reg)


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def submit(pool: db.Pool, tenant: TenantId, n: int, **kw: Any) -> list[JobId]:
    res = await jobs.submit_many(
        pool, tenant_id=tenant, jobs=[NewJob(**{"type": "echo", "data": {"i": i}, **kw})
                                      for i in range(n)],
    )
    return [r.job.id for r in res if not isinstance(r, Exception)]
