"""Giving leases back when a worker stops (docs/design.md, invariant 8).

A released job goes back to the queue without burning an attempt: the stop
was ours, not the job's fault. If the database stays away past the
deadline the leases are left to expire; the reaper then re-queues them,
counting an attempt, which is the price of not hanging the shutdown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from jobqueue import db, errors
from jobqueue.db import leases
from jobqueue.models import JobId, LeaseToken
from jobqueue.process.backoff import Backoff
from jobqueue.worker.handlers import Logger


async def release(
    pool: db.Pool, *, held: Sequence[tuple[JobId, LeaseToken]], deadline_seconds: float,
    log: Logger,
) -> None:
    """Release `held`, retrying through an outage until the deadline."""
    backoff = Backoff(base=0.2, cap=2.0)
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            released = await leases.release(pool, held=held)
            break
        except errors.DatabaseUnavailable as exc:
            if time.monotonic() > deadline:
                log.error("cannot release leases; they will expire", error=str(exc),
                          jobs=len(held))
                return
            await asyncio.sleep(backoff.next())
    log.info("released unfinished jobs without burning an attempt",
             released=len(released), lost=len(held) - len(released))
