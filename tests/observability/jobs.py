"""Handlers for the observability tests' worker processes (--handlers tests.observability.jobs)."""

from __future__ import annotations

from jobqueue.models import JSON
from jobqueue.worker.handlers import JobContext, handler


@handler("obs-chatty")
async def chatty(ctx: JobContext, data: JSON) -> JSON:
    """Logs what a careless handler would: a credential by name and the payload."""
    secret = data.get("api_key") if isinstance(data, dict) else None
    ctx.log.info("calling upstream", api_key=secret, data=data, url="https://upstream/v1")
    ctx.log.info(f"using key {secret}")
    return {"ok": True}


@handler("obs-fail")
async def fail(ctx: JobContext, data: JSON) -> JSON:
    """Always fails: with max_attempts=1 the job lands in the DLQ."""
    raise RuntimeError("upstream said no")
