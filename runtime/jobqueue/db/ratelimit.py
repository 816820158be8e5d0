"""Per-tenant request rate limit and failure budgets (GCRA), shared by every
API replica."""

from __future__ import annotations

from collections.abc import Sequence
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


@dataclass(frozen=True, slots=True)
class Budget:
    """A failure budget: `burst` failures at once, refilled at `per_minute`."""

    key: str
    per_minute: float
    burst: int


def _columns(budgets: Sequence[Budget]) -> tuple[list[str], list[float], list[int]]:
    return [b.key for b in budgets], [60.0 / b.per_minute for b in budgets], [
        b.burst for b in budgets
    ]


@translate
async def failure_waits(conn: Executor, *, budgets: Sequence[Budget]) -> dict[str, float]:
    """Seconds until each budget has room for one more failure (0: it has now).

    Spends nothing. One round trip.
    """
    keys, ts, bursts = _columns(budgets)
    rows = await conn.fetch(Q["auth_failure_room"], keys, ts, bursts)
    return {r["key"]: float(r["wait"]) for r in rows}


@translate
async def charge_failures(
    conn: Executor, *, charges: Sequence[tuple[Budget, int]]
) -> dict[str, float]:
    """Spend failures of each budget (saturating at its burst); the seconds
    until each has room again. One round trip."""
    keys, ts, bursts = _columns([b for b, _ in charges])
    costs = [cost for _, cost in charges]
    rows = await conn.fetch(Q["auth_failure_charge"], keys, ts, bursts, costs)
    return {r["key"]: float(r["wait"]) for r in rows}
