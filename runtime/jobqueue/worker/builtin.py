"""Handlers every worker has. None of them can harm the worker: they take no
paths, run no commands and validate their input (bad input goes to the DLQ).
"""

from __future__ import annotations

import asyncio
import math

from jobqueue.models import JSON
from jobqueue.worker.handlers import JobContext, PermanentFailure

# Longer sleeps are a job's timeout's business, not this handler's.
MAX_SLEEP_SECONDS = 86_400.0


async def echo(ctx: JobContext, data: JSON) -> JSON:
    """Return the job's data unchanged (smoke tests, benchmarks)."""
    return data


async def sleep(ctx: JobContext, data: JSON) -> JSON:
    """{"seconds": n}: wait n seconds without blocking the worker, return {"slept": n}."""
    seconds = data.get("seconds") if isinstance(data, dict) else None
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or not 0 <= seconds <= MAX_SLEEP_SECONDS
    ):
        raise PermanentFailure(
            f'sleep expects {{"seconds": n}} with 0 <= n <= {MAX_SLEEP_SECONDS:g}, got {data!r}'
        )
    await asyncio.sleep(seconds)
    return {"slept": seconds}


# Added to every worker's registry by `handlers.load`.
BUILTINS = {"echo": echo, "sleep": sleep}
