"""Tenants, their quotas and their API keys (hashes only)."""

from __future__ import annotations

from dataclasses import dataclass

from jobqueue import errors
from jobqueue.db import Executor, queries, rows, translate
from jobqueue.models import Tenant, TenantId, TenantQuotas

Q = queries.load("tenants")


@dataclass(frozen=True, slots=True)
class Credentials:
    enabled: bool
    key_hashes: list[str]


def _quota_args(q: TenantQuotas) -> tuple[object, ...]:
    """In the column order of the upsert and create queries."""
    return (q.enabled, q.max_concurrent, q.rate_per_minute, q.rate_burst, q.weight, q.max_queued)


@translate
async def upsert(conn: Executor, *, tenant_id: TenantId, quotas: TenantQuotas) -> Tenant:
    """Create or overwrite; the operator's reconcile uses this."""
    return rows.tenant(await conn.fetchrow(Q["upsert"], tenant_id, *_quota_args(quotas)))


@translate
async def create(conn: Executor, *, tenant_id: TenantId, quotas: TenantQuotas) -> Tenant:
    r = await conn.fetchrow(Q["create"], tenant_id, *_quota_args(quotas))
    if r is None:
        raise errors.TenantExists(f"tenant {tenant_id} already exists")
    return rows.tenant(r)


@translate
async def update(
    conn: Executor,
    *,
    tenant_id: TenantId,
    enabled: bool | None = None,
    max_concurrent: int | None = None,
    rate_per_minute: int | None = None,
    rate_burst: int | None = None,
    weight: int | None = None,
    max_queued: int | None = None,
) -> Tenant:
    """Change only the fields given."""
    r = await conn.fetchrow(
        Q["update"],
        tenant_id,
        enabled,
        max_concurrent,
        rate_per_minute,
        rate_burst,
        weight,
        max_queued,
    )
    if r is None:
        raise errors.TenantNotFound(f"tenant {tenant_id} not found")
    return rows.tenant(r)


@translate
async def get(conn: Executor, *, tenant_id: TenantId) -> Tenant:
    r = await conn.fetchrow(Q["get"], tenant_id)
    if r is None:
        raise errors.TenantNotFound(f"tenant {tenant_id} not found")
    return rows.tenant(r)


@translate
async def list_tenants(conn: Executor) -> list[Tenant]:
    return [rows.tenant(r) for r in await conn.fetch(Q["list"])]


@translate
async def add_api_key(
    conn: Executor, *, tenant_id: TenantId, key_hash: str, name: str = "default"
) -> None:
    await conn.fetchval(Q["add_api_key"], tenant_id, name, key_hash)


@translate
async def credentials(conn: Executor, *, tenant_id: TenantId) -> Credentials:
    found = await conn.fetch(Q["api_key_hashes"], tenant_id)
    if not found:
        raise errors.TenantNotFound(f"tenant {tenant_id} not found")
    return Credentials(
        enabled=found[0]["enabled"],
        key_hashes=[r["key_hash"] for r in found if r["key_hash"] is not None],
    )


@translate
async def revoke_api_keys(conn: Executor, *, tenant_id: TenantId) -> int:
    return len(await conn.fetch(Q["revoke_api_keys"], tenant_id))


@translate
async def ensure_api_key(
    conn: Executor, *, tenant_id: TenantId, key_hash: str, name: str = "default"
) -> TenantId:
    """Register (or revive) a key hash for the tenant; idempotent.

    Returns the tenant that owns the hash: another tenant's id means the key
    is already that tenant's, and nothing changed.
    """
    owner = await conn.fetchval(Q["ensure_api_key"], tenant_id, name, key_hash)
    return TenantId(owner)


@translate
async def revoke_other_api_keys(
    conn: Executor, *, tenant_id: TenantId, name: str, keep_hash: str
) -> int:
    """Revoke the tenant's live keys called `name`, except `keep_hash` (key rotation)."""
    return len(await conn.fetch(Q["revoke_other_api_keys"], tenant_id, name, keep_hash))
