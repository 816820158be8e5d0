"""Queue depth and age, read from partial indexes only."""

from __future__ import annotations

from jobqueue.db import Executor, queries, translate
from jobqueue.models import DepthRow, JobStatus, TenantId

Q = queries.load("stats")


@translate
async def depth(
    conn: Executor, *, tenant_id: TenantId | None = None, queue: str | None = None
) -> list[DepthRow]:
    """Unfinished and DLQ jobs by tenant, queue and status."""
    return [
        DepthRow(
            tenant_id=TenantId(r["tenant_id"]),
            queue=r["queue"],
            status=JobStatus(r["status"]),
            jobs=r["jobs"],
            oldest_ready_age_seconds=(
                float(r["oldest_ready_age"]) if r["oldest_ready_age"] is not None else None
            ),
        )
        for r in await conn.fetch(Q["depth"], tenant_id, queue)
    ]
