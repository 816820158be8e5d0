"""Handlers for tests that run real worker processes (--handlers tests.chaos.handlers).

Every execution is recorded in the file named by JOBQUEUE_CHAOS_LOG, one
line per phase: `start|end job_id attempt worker_id pid unix_time`. Lines are short
and written with one O_APPEND write each, so lines from many processes
never interleave, and a line written before a SIGKILL survives it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

from jobqueue import JobContext, handler


def record(phase: str, ctx: JobContext) -> None:
    path = os.environ.get("JOBQUEUE_CHAOS_LOG")
    if not path:
        return
    line = f"{phase} {ctx.job_id} {ctx.attempt} {ctx.worker_id} {os.getpid()} {time.time():.3f}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@handler("chaos-record")
async def chaos_record(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Sleep data["ms"] milliseconds; the result names who ran it."""
    record("start", ctx)
    await asyncio.sleep(data.get("ms", 0) / 1000)
    record("end", ctx)
    return {"worker": ctx.worker_id, "attempt": ctx.attempt}


@handler("kill-own-process")
def kill_own_process(ctx: JobContext, data: Any) -> None:
    """Takes its worker down every time: SIGKILL to its own process."""
    record("start", ctx)
    os.kill(os.getpid(), signal.SIGKILL)


@handler("wait-for-file")
async def wait_for_file(ctx: JobContext, data: dict[str, Any]) -> dict[str, Any]:
    """Run until data["path"] exists (at most data["max_seconds"])."""
    record("start", ctx)
    path = Path(data["path"])
    for _ in range(int(data.get("max_seconds", 60) * 20)):
        if await asyncio.to_thread(path.exists):
            break
        await asyncio.sleep(0.05)
    record("end", ctx)
    return {"worker": ctx.worker_id}


class Executions:
    """The records of one run, parsed."""

    def __init__(self, path: Path) -> None:
        self.starts: list[tuple[str, int, str, int]] = []
        self.ends: list[tuple[str, int, str, int]] = []
        # (job_id, attempt) -> unix time of its first start / end line.
        self.started_at: dict[tuple[str, int], float] = {}
        self.ended_at: dict[tuple[str, int], float] = {}
        self.lines = path.read_text().splitlines() if path.exists() else []
        for line in self.lines:
            phase, job, attempt, worker, pid, at = line.split()
            row = (job, int(attempt), worker, int(pid))
            (self.starts if phase == "start" else self.ends).append(row)
            times = self.started_at if phase == "start" else self.ended_at
            times.setdefault((job, int(attempt)), float(at))

    def of(self, job_id: object) -> list[str]:
        return [line for line in self.lines if f" {job_id} " in line]


@handler("block-thread")
def block_thread(ctx: JobContext, data: dict[str, Any]) -> None:
    """A sync handler stuck in a blocking call Python cannot interrupt."""
    record("start", ctx)
    time.sleep(data.get("seconds", 60))
