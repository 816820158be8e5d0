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


def _sleep_problem(data: JSON) -> str | None:
    """What is wrong with sleep's input, by shape only: the error is stored
    and logged, and errors never carry the payload (not even a part of it)."""
    if not isinstance(data, dict):
        return f"got {_kind(data)}"
    if "seconds" not in data:
        return 'got an object without "seconds"'
    seconds = data["seconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return f'got "seconds" as {_kind(seconds)}'
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_SLEEP_SECONDS:
        return 'got "seconds" out of range'
    return None


def _kind(value: JSON) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), "a value of another type")


async def sleep(ctx: JobContext, data: JSON) -> JSON:
    """{"seconds": n}: wait n seconds without blocking the worker, return {"slept": n}."""
    if (problem := _sleep_problem(data)) is not None:
        raise PermanentFailure(
            f'sleep expects {{"seconds": n}} with 0 <= n <= {MAX_SLEEP_SECONDS:g}; {problem}'
        )
    seconds = data["seconds"]
    await asyncio.sleep(seconds)
    return {"slept": seconds}


# Added to every worker's registry by `handlers.load`.
BUILTINS = {"echo": echo, "sleep": sleep}
