"""Handlers for the browser tests' worker (--handlers tests.ui.handlers)."""

from __future__ import annotations

import asyncio
from typing import Any

from jobqueue import JobContext, PermanentFailure, handler

# Jobs this worker process has failed once; they succeed when run again.
_failed: set[str] = set()

# Markup in an error message: the dashboard must show it as text.
HOSTILE_ERROR = '<img src=x onerror="window.__pwned = \'error\'">'


@handler("ui-work")
async def work(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Take data["ms"] milliseconds, long enough to be seen queued first."""
    await asyncio.sleep(data.get("ms", 0) / 1000)
    return {"done": True, "attempt": ctx.attempt}


@handler("ui-fail-once")
async def fail_once(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Straight to the DLQ the first time this worker sees the job; then succeed."""
    if str(ctx.job_id) not in _failed:
        _failed.add(str(ctx.job_id))
        raise PermanentFailure(HOSTILE_ERROR)
    return {"retried": True, "attempt": ctx.attempt}
