"""An example handler module: run it with

    jobqueue worker --queue default --handlers examples.handlers

Handlers are at-least-once: use ctx.job_id (and ctx.attempt) to make side
effects idempotent.
"""

from __future__ import annotations

from jobqueue import JobContext, PermanentFailure, handler


@handler("greet")
async def greet(ctx: JobContext, data: dict[str, str]) -> dict[str, str]:
    name = data.get("name")
    if not name:
        raise PermanentFailure("data.name is required")  # straight to the DLQ
    ctx.log.info("greeting", attempt=ctx.attempt)
    return {"greeting": f"hello, {name}", "job": str(ctx.job_id)}


@handler("checksum")
def checksum(ctx: JobContext, data: dict[str, str]) -> dict[str, int]:
    # Sync handlers run in a thread, so CPU work doesn't stall the worker.
    return {"sum": sum(map(ord, data.get("text", "")))}
