"""Open WebSockets answer to their tenant's current state, as requests do.

A request reads its tenant through the cache, so disabling a tenant refuses
its requests within `tenant_cache_seconds`. A socket is admitted once; this
task re-reads, every `tenant_cache_seconds` (at least every MIN_INTERVAL),
the tenants that have sockets open and closes those of a disabled tenant
(4403) or a deleted one (4401). The rows read go into the tenant cache, so
requests and sockets see the same state. While the database is away,
sockets stay open (as tokens stay valid): nothing new can be known, and
`run_forever` retries with backoff.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from structlog.typing import FilteringBoundLogger

from jobqueue import errors
from jobqueue.api.state import Runtime
from jobqueue.db import tenants
from jobqueue.models import Tenant, TenantId
from jobqueue.observability import logging as obslog
from jobqueue.process.service import Service

TENANT_DISABLED = 4403
TENANT_DELETED = 4401
# A zero cache TTL (tests) must not turn the check into a busy loop.
MIN_INTERVAL = 0.5
# Up to this many watched tenants are read one by one; more, in one list.
READ_ONE_BY_ONE = 50


def _log() -> FilteringBoundLogger:
    return obslog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Result:
    checked: int
    closed: int


async def _current(rt: Runtime, watched: list[TenantId]) -> dict[TenantId, Tenant]:
    if len(watched) > READ_ONE_BY_ONE:
        return {t.id: t for t in await tenants.list_tenants(rt.pool)}
    found: dict[TenantId, Tenant] = {}
    for tenant_id in watched:
        with contextlib.suppress(errors.TenantNotFound):
            found[tenant_id] = await tenants.get(rt.pool, tenant_id=tenant_id)
    return found


class Revalidation(Service[Result]):
    name = "watcher-revalidation"
    component = "api"

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.interval = max(rt.settings.tenant_cache_seconds, MIN_INTERVAL)

    async def run_once(self) -> Result:
        rt = self.rt
        watched = rt.hub.tenants()
        if not watched:
            return Result(0, 0)
        async with rt.deadline():
            current = await _current(rt, watched)
        closed = 0
        for tenant_id in watched:
            tenant = current.get(tenant_id)
            if tenant is None:
                rt.tenants.forget(tenant_id)
                closed += rt.hub.evict(tenant_id, TENANT_DELETED,
                                       f"tenant {tenant_id} was deleted")
                continue
            rt.tenants.put(tenant)
            if not tenant.enabled:
                closed += rt.hub.evict(tenant_id, TENANT_DISABLED,
                                       f"tenant {tenant_id} is disabled")
        if closed:
            _log().info("closed the sockets of disabled or deleted tenants", sockets=closed)
        return Result(len(watched), closed)
