"""Per-tenant request rate limit (GCRA), shared by every API replica."""

from __future__ import annotations

from dataclasses import dataclass

from jobqueue import errors
from jobqueue.db import Executor, queries, translate
from jobqueue.models import TenantId

Q = queries.load("ratelimit")


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    retry_after_seconds: float


@translate
async def take(conn: Executor, *, tenant_id: TenantId, cost: int = 1) -> Decision:
    """Spend `cost` requests of the tenant's budget, if it has them. One round trip."""
    r = await conn.fetchrow(Q["take"], tenant_id, cost)
    if r is None or r["retry_after"] is None:
        raise errors.TenantNotFound(f"tenant {tenant_id} not found")
    if r["allowed"]:
        return Decision(True, 0.0)
    return Decision(False, max(float(r["retry_after"]), 0.001))
