"""The e2e tests' handler module, baked into jobqueue-e2e:dev as `jobqueue_e2e`.

`e2e-record` leaves a receipt of every execution in the database before it
returns: a job of type `receipt` in the queue `e2e-receipts` (no worker
serves it), data {"job", "attempt", "worker"}, with no idempotency key, so
a second execution of the same attempt leaves a second receipt. A receipt
is committed before the job is acknowledged, so it survives the worker pod
being deleted right after.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from jobqueue import JobContext, db, handler
from jobqueue.db import jobs
from jobqueue.models import NewJob

RECEIPTS = "e2e-receipts"

_pool: db.Pool | None = None
_lock = asyncio.Lock()


async def _receipts() -> db.Pool:
    global _pool
    async with _lock:
        if _pool is None:
            _pool = await db.create_pool(os.environ["DATABASE_URL"], min_size=1, max_size=4)
    return _pool


@handler("e2e-record")
async def record(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Wait data["ms"] milliseconds (a job that takes time), then leave a receipt."""
    await asyncio.sleep(float(data.get("ms", 0)) / 1000)
    receipt = NewJob(
        type="receipt",
        queue=RECEIPTS,
        data={"job": str(ctx.job_id), "attempt": ctx.attempt, "worker": str(ctx.worker_id)},
    )
    await jobs.submit(await _receipts(), tenant_id=ctx.tenant_id, job=receipt)
    return {"worker": str(ctx.worker_id), "attempt": ctx.attempt}
