"""Tenant: its row in the tenants table, its API key, its status.

The tenants table is the single source of truth the API and the workers
read; the Tenant resource is how a cluster admin writes to it. The name of
the resource is the tenant id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from jobqueue import apikeys, errors
from jobqueue.db import Pool, stats
from jobqueue.db import tenants as tenant_rows
from jobqueue.models import TenantId, TenantQuotas
from jobqueue_operator import builders, models, tenant_builders
from jobqueue_operator import status as st
from jobqueue_operator.context import Context, database_problem
from jobqueue_operator.kube import Conflict, KubeError

# api_keys.name of the key the operator registers; rotation revokes the
# others of this name and leaves keys made by other means (CLI) alone.
KEY_NAME = "jobqueue-operator"
KIND = "Tenant"


@dataclass(frozen=True, slots=True)
class Outcome:
    status: dict[str, Any]
    problem: st.Problem | None
    # False when only a change of the spec can help (kopf stops retrying).
    retry: bool


def validation_message(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}" for err in exc.errors()
    )


async def reconcile(
    ctx: Context,
    *,
    name: str,
    uid: str,
    generation: int | None,
    spec: dict[str, Any],
    previous: dict[str, Any] | None,
) -> Outcome:
    """Write the row, make sure the API key is registered, count the tenant's jobs."""
    secret_at: dict[str, str] | None = None
    depth: st.Depth | None = None

    def outcome(problem: st.Problem | None, retry: bool = True) -> Outcome:
        status = st.tenant_status(
            generation=generation,
            problem=problem,
            depth=depth,
            api_key_secret=secret_at,
            previous=previous,
            now=datetime.now(UTC),
        )
        return Outcome(status, problem, retry)

    try:
        parsed = models.TenantSpec.model_validate(spec)
    except ValidationError as exc:
        return outcome(st.Problem(st.INVALID_SPEC, validation_message(exc)), retry=False)
    if not re.fullmatch(models.TENANT_NAME_PATTERN, name):
        return outcome(
            st.Problem(st.INVALID_SPEC, f"{name!r} cannot be a tenant id: use a DNS label"),
            retry=False,
        )
    dsn = ctx.dsn
    if dsn is None:
        return outcome(st.Problem(st.DATABASE_UNAVAILABLE, "no database: set DATABASE_URL"))
    tenant_id = TenantId(name)
    quotas = tenant_builders.tenant_quotas(parsed)
    try:
        await ctx.databases.run(dsn, lambda pool: _write_row(pool, tenant_id, quotas))
    except errors.JobQueueError as exc:
        return outcome(database_problem(exc, dsn))

    owner = builders.Owner(kind=KIND, name=name, uid=uid)
    try:
        found = await _api_key(ctx, owner, parsed)
    except KubeError as exc:
        return outcome(st.Problem(st.API_KEY_SECRET_MISSING, str(exc)))
    if isinstance(found, st.Problem):
        return outcome(found)
    secret_at, api_key = found
    key_hash = apikeys.digest(api_key)
    try:
        holder = await ctx.databases.run(dsn, lambda pool: _register_key(pool, tenant_id, key_hash))
        if holder != tenant_id:
            return outcome(
                st.Problem(
                    st.API_KEY_IN_USE,
                    f"the key in Secret {secret_at['namespace']}/{secret_at['name']} "
                    "already belongs to another tenant",
                )
            )
        depth = st.Depth.of(
            await ctx.databases.run(dsn, lambda pool: stats.depth(pool, tenant_id=tenant_id))
        )
    except errors.JobQueueError as exc:
        return outcome(database_problem(exc, dsn))
    return outcome(None)


async def _write_row(pool: Pool, tenant_id: TenantId, quotas: TenantQuotas) -> None:
    """Upsert only on a difference, so a status tick does not rewrite the row."""
    try:
        row = await tenant_rows.get(pool, tenant_id=tenant_id)
    except errors.TenantNotFound:
        row = None
    if row is not None and (
        row.enabled,
        row.max_concurrent,
        row.rate_per_minute,
        row.rate_burst,
        row.weight,
        row.max_queued,
    ) == (
        quotas.enabled,
        quotas.max_concurrent,
        quotas.rate_per_minute,
        quotas.rate_burst,
        quotas.weight,
        quotas.max_queued,
    ):
        return
    await tenant_rows.upsert(pool, tenant_id=tenant_id, quotas=quotas)


async def _register_key(pool: Pool, tenant_id: TenantId, key_hash: str) -> TenantId:
    holder = await tenant_rows.ensure_api_key(
        pool, tenant_id=tenant_id, key_hash=key_hash, name=KEY_NAME
    )
    if holder == tenant_id:
        await tenant_rows.revoke_other_api_keys(
            pool, tenant_id=tenant_id, name=KEY_NAME, keep_hash=key_hash
        )
    return holder


async def _api_key(
    ctx: Context, owner: builders.Owner, spec: models.TenantSpec
) -> tuple[dict[str, str], str] | st.Problem:
    """(where the key lives, the key): the named Secret's, or one we generate once."""
    namespace = ctx.settings.namespace
    ref = spec.api_key_secret_ref
    name = ref.name if ref else tenant_builders.api_key_secret_name(owner.name)
    key = ref.key if ref else models.ApiKeySecretRef.model_fields["key"].default
    where = {"namespace": namespace, "name": name, "key": key}
    secret = await ctx.kube.get("v1", "Secret", name, namespace)
    if secret is None and ref is None:
        manifest = tenant_builders.api_key_secret(
            owner, namespace=namespace, key_name=key, api_key=apikeys.generate()
        )
        try:
            secret = await ctx.kube.create(manifest)
        except Conflict:  # made by a concurrent reconcile: use that one
            secret = await ctx.kube.get("v1", "Secret", name, namespace)
    if secret is None:
        return st.Problem(st.API_KEY_SECRET_MISSING, f"Secret {namespace}/{name} not found")
    value = builders.secret_value(secret, key)
    if not value:
        return st.Problem(
            st.API_KEY_SECRET_MISSING, f"Secret {namespace}/{name} has no key {key!r}"
        )
    return where, value


async def finalize(ctx: Context, *, name: str, uid: str) -> None:
    """The Tenant is being deleted: disable it and revoke its keys, keep its jobs.

    Jobs stay for their history (and the foreign keys); the generated key
    Secret goes. Raises DatabaseUnavailable so kopf keeps the finalizer and
    retries until the database answers.
    """
    if ctx.dsn is None:
        raise errors.DatabaseUnavailable("no database: set DATABASE_URL")
    tenant_id = TenantId(name)

    async def disable(pool: Pool) -> None:
        try:
            await tenant_rows.update(pool, tenant_id=tenant_id, enabled=False)
        except errors.TenantNotFound:
            return
        await tenant_rows.revoke_api_keys(pool, tenant_id=tenant_id)

    await ctx.databases.run(ctx.dsn, disable)
    namespace = ctx.settings.namespace
    secret_name = tenant_builders.api_key_secret_name(name)
    secret = await ctx.kube.get("v1", "Secret", secret_name, namespace)
    owners = (secret or {}).get("metadata", {}).get("ownerReferences") or []
    if any(o.get("uid") == uid for o in owners):
        await ctx.kube.delete("v1", "Secret", secret_name, namespace)
