"""Tenant quotas at the door: a short cache of tenant rows, and the backlog gate.

The hot path of a submit is two round trips: the rate limit (GCRA in
Postgres, `db.ratelimit.take`) and the insert. Tenant rows (enabled flag,
quotas) come from a cache at most `ttl` seconds old, so disabling a tenant
or changing its quotas takes effect within that time on every replica.

The `max_queued` check costs a count of the tenant's backlog, up to the
limit. `BacklogGate` asks for it only when the tenant may be near its
limit, judged from the last depth snapshot (refreshed every few seconds
for the metrics) plus what this process accepted since. Like the check
itself, the quota is soft: replicas that each see room may together pass
it by what they accept between two snapshots.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from jobqueue import db
from jobqueue.db import tenants
from jobqueue.models import DepthRow, JobStatus, Tenant, TenantId

Clock = Callable[[], float]


class TenantCache:
    def __init__(self, ttl_seconds: float, *, clock: Clock = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[TenantId, tuple[float, Tenant]] = {}

    async def get(self, pool: db.Executor, tenant_id: TenantId) -> Tenant:
        """The tenant, fresh enough; TenantNotFound if it does not exist."""
        now = self._clock()
        hit = self._entries.get(tenant_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        tenant = await tenants.get(pool, tenant_id=tenant_id)
        self._entries[tenant_id] = (now, tenant)
        return tenant

    def put(self, tenant: Tenant) -> None:
        """A row read just now elsewhere (the watcher check): requests see it too."""
        self._entries[tenant.id] = (self._clock(), tenant)

    def forget(self, tenant_id: TenantId) -> None:
        self._entries.pop(tenant_id, None)


class BacklogGate:
    """Decides when a submission must count the tenant's backlog exactly (pure)."""

    def __init__(self, *, max_age_seconds: float, clock: Clock = time.monotonic) -> None:
        self._max_age = max_age_seconds
        self._clock = clock
        self._queued: dict[TenantId, int] = {}
        self._accepted: dict[TenantId, int] = {}
        self._at: float | None = None

    def snapshot(self, rows: Iterable[DepthRow]) -> None:
        """A fresh depth reading of every tenant (tenants absent have none queued)."""
        queued: dict[TenantId, int] = {}
        for r in rows:
            if r.status == JobStatus.QUEUED:
                queued[r.tenant_id] = queued.get(r.tenant_id, 0) + r.jobs
        self._queued = queued
        self._accepted = {}
        self._at = self._clock()

    def accepted(self, tenant_id: TenantId, n: int) -> None:
        self._accepted[tenant_id] = self._accepted.get(tenant_id, 0) + n

    def estimate(self, tenant_id: TenantId) -> int | None:
        if self._at is None or self._clock() - self._at > self._max_age:
            return None
        return self._queued.get(tenant_id, 0) + self._accepted.get(tenant_id, 0)

    def must_check(self, tenant_id: TenantId, max_queued: int, adding: int = 1) -> bool:
        estimate = self.estimate(tenant_id)
        if estimate is None:
            return True
        # Leave room for other replicas and for jobs queued since the snapshot.
        margin = max(100, max_queued // 10)
        return estimate + adding + margin >= max_queued
