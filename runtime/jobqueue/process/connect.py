"""Opening a process's first pool: retried until it works or a stop.

A process that starts during a database outage waits for the database
instead of crashing (a crash loop would only add restarts to the outage);
a stop request meanwhile ends the wait with nothing to clean up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from jobqueue import errors
from jobqueue.observability import metrics
from jobqueue.observability.logging import Logger
from jobqueue.process.backoff import Backoff
from jobqueue.process.service import event_within

T = TypeVar("T")


async def until_connected(
    open_pool: Callable[[], Awaitable[T]],
    *,
    stop: asyncio.Event,
    component: str,
    log: Logger,
    backoff: Backoff | None = None,
) -> T | None:
    """`await open_pool()`, retried with backoff while the database is
    unavailable; None when `stop` is set first."""
    backoff = backoff or Backoff(base=0.2, cap=5.0)
    db_errors = metrics.DB_ERRORS.labels(component)
    while not stop.is_set():
        try:
            return await open_pool()
        except errors.DatabaseUnavailable as exc:
            db_errors.inc()
            delay = backoff.next()
            log.warning("database unavailable, retrying", error=str(exc),
                        retry_in=round(delay, 2))
            await event_within(stop, delay)
    return None
