"""Handlers for tests/live (--handlers tests.live.handlers): the ergonomic
features as real worker processes run them. Markers are files under
data["dir"], so the test process sees what a handler saw."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from jobqueue import JobContext, Retry, handler


def mark(data: dict[str, Any], name: str) -> None:
    (Path(data["dir"]) / name).write_text("1")


@handler("progress-steps")
async def progress_steps(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    n = data["steps"]
    for i in range(1, n + 1):
        ctx.progress(i / n, f"step {i} of {n}")
        await asyncio.sleep(data.get("pause", 0.4))
    return {"steps": n}


@handler("fail-then-succeed", retry=Retry(base_seconds=0.05, cap_seconds=0.1))
async def fail_then_succeed(ctx: JobContext, data: dict[str, Any]) -> str:
    if ctx.attempt <= data["failures"]:
        raise RuntimeError(f"failure number {ctx.attempt}")
    return "finally"


@handler("cancel-async")
async def cancel_async(ctx: JobContext, data: dict[str, Any]) -> str:
    mark(data, "async-started")
    try:
        await asyncio.sleep(60)
    except asyncio.CancelledError:
        mark(data, "async-cancelled")
        raise
    return "never"


@handler("cancel-sync")
def cancel_sync(ctx: JobContext, data: dict[str, Any]) -> str:
    mark(data, "sync-started")
    deadline = time.monotonic() + 60
    while not ctx.cancelled and time.monotonic() < deadline:
        time.sleep(0.02)
    if ctx.cancelled:
        mark(data, "sync-saw-cancelled")
    return "dropped"


@handler("snooze-once")
def snooze_once(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    marker = Path(data["dir"]) / "snoozed"
    if not marker.exists():
        marker.write_text("1")
        ctx.snooze(data["seconds"])
    return {"attempt": ctx.attempt}
