"""Tenant rows are read through a short cache: changes show within its TTL."""

from __future__ import annotations

import pytest

from jobqueue import db, errors
from jobqueue.api.quotas import TenantCache
from jobqueue.db import tenants
from jobqueue.models import TenantId
from tests import factories


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_disabled_tenant_shows_once_the_cached_row_is_older_than_the_ttl(
    api_pool: db.Pool,
) -> None:
    t = await factories.tenant(api_pool)
    clock = Clock()
    cache = TenantCache(5.0, clock=clock)
    assert (await cache.get(api_pool, t.id)).enabled
    await tenants.update(api_pool, tenant_id=t.id, enabled=False)
    clock.now = 4.9
    assert (await cache.get(api_pool, t.id)).enabled  # still the cached row
    clock.now = 5.0
    assert not (await cache.get(api_pool, t.id)).enabled
    with pytest.raises(errors.TenantNotFound):
        await cache.get(api_pool, TenantId("no-such-tenant"))
