"""What the dashboard reads besides jobs: throughput, busy workers, tenants
with their budgets, queues with their defaults and worker replicas.

Everything here reads partial indexes or small tables: finished jobs of the
last minutes, leased and running jobs, tenants, queues.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jobqueue import errors
from jobqueue.db import Executor, Record, queries, rows, translate
from jobqueue.models import JobStatus, Tenant, TenantId

Q = queries.load("dashboard")

MAX_MINUTES = 60
# A report older than this is not shown: the operator stopped reporting.
REPLICAS_FRESH_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Finished:
    queue: str
    minute: datetime
    status: JobStatus
    jobs: int


@dataclass(frozen=True, slots=True)
class Throughput:
    # The current minute (database clock); the series ends with it.
    minute: datetime
    now: datetime
    rows: list[Finished]


@dataclass(frozen=True, slots=True)
class Replicas:
    replicas: int
    ready_replicas: int
    max_replicas: int
    reported_at: datetime


@dataclass(frozen=True, slots=True)
class TenantState:
    tenant: Tenant
    # Requests the tenant could send right now before its rate limit bites.
    rate_tokens: int


@dataclass(frozen=True, slots=True)
class QueueInfo:
    name: str
    default_max_attempts: int | None
    created_at: datetime
    replicas: Replicas | None


@translate
async def throughput(
    conn: Executor, *, tenant_id: TenantId | None, minutes: int = 15
) -> Throughput:
    """Jobs finished per queue, minute and outcome, the last `minutes` minutes."""
    if not 1 <= minutes <= MAX_MINUTES:
        raise errors.InvalidInput(f"minutes must be between 1 and {MAX_MINUTES}")
    clock = await conn.fetchrow(Q["clock"])
    found = await conn.fetch(Q["throughput"], tenant_id, minutes)
    return Throughput(
        minute=clock["minute"],
        now=clock["now"],
        rows=[Finished(r["queue"], r["minute"], JobStatus(r["status"]), r["jobs"])
              for r in found],
    )


@translate
async def busy_workers(conn: Executor, *, tenant_id: TenantId | None) -> dict[str, int]:
    """Per queue, the workers holding at least one of the tenant's jobs."""
    return {r["queue"]: r["workers"] for r in await conn.fetch(Q["workers"], tenant_id)}


def _replicas(r: Record) -> Replicas:
    return Replicas(r["replicas"], r["ready_replicas"], r["max_replicas"], r["reported_at"])


@translate
async def replicas(conn: Executor) -> dict[str, Replicas]:
    """Worker pods per queue as the operator last reported them (recent only)."""
    found = await conn.fetch(Q["replicas"], REPLICAS_FRESH_SECONDS)
    return {r["queue"]: _replicas(r) for r in found}


@translate
async def report_replicas(
    conn: Executor, *, queue: str, replicas: int, ready_replicas: int, max_replicas: int
) -> None:
    """Record a queue's worker pods (the operator, on each status refresh)."""
    await conn.execute(Q["report_replicas"], queue, replicas, ready_replicas, max_replicas)


@translate
async def tenant_states(conn: Executor) -> list[TenantState]:
    """Every tenant, its quotas and the requests its budget allows now."""
    return [TenantState(rows.tenant(r), r["rate_tokens"]) for r in await conn.fetch(Q["tenants"])]


@translate
async def queue_list(conn: Executor) -> list[QueueInfo]:
    """Every queue with a row, its defaults and its last replica report."""
    return [
        QueueInfo(
            name=r["name"],
            default_max_attempts=r["default_max_attempts"],
            created_at=r["created_at"],
            replicas=_replicas(r) if r["reported_at"] is not None else None,
        )
        for r in await conn.fetch(Q["queues"])
    ]
