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


def autoscaler_query(queue: str) -> str:
    """`unfinished_in_queue` with the queue as a literal, for an autoscaler that
    runs SQL of its own and takes no parameters (KEDA's postgresql trigger).

    The literal is quoted the standard way (quotes doubled), which is exact
    under standard_conforming_strings, PostgreSQL's default since 9.1.
    """
    literal = "'" + queue.replace("'", "''") + "'"
    lines = [ln for ln in Q["unfinished_in_queue"].splitlines() if not ln.lstrip().startswith("--")]
    return " ".join(" ".join(lines).replace("$1", literal).split())
