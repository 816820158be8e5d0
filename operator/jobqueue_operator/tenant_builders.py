"""Tenant children and the tenants-table row (pure)."""

from __future__ import annotations

import base64

from jobqueue.models import TenantQuotas
from jobqueue_operator import models
from jobqueue_operator.builders import Manifest, Owner, meta


def tenant_quotas(spec: models.TenantSpec) -> TenantQuotas:
    """The tenants-table row for a Tenant spec."""
    return TenantQuotas(
        enabled=spec.enabled,
        max_concurrent=spec.quotas.max_concurrent_jobs,
        rate_per_minute=spec.quotas.rate_limit.requests_per_minute,
        rate_burst=spec.quotas.rate_limit.burst,
        weight=spec.weight,
        max_queued=spec.quotas.max_queued_jobs,
    )


def api_key_secret_name(tenant: str) -> str:
    return f"jobqueue-tenant-{tenant}"


def api_key_secret(owner: Owner, *, namespace: str, key_name: str, api_key: str) -> Manifest:
    """The generated key of a Tenant that names no Secret of its own.

    The owner is cluster-scoped, which a namespaced child may reference.
    """
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": meta(owner, api_key_secret_name(owner.name), "api-key", namespace),
        "data": {
            key_name: base64.b64encode(api_key.encode()).decode(),
            "tenant": base64.b64encode(owner.name.encode()).decode(),
        },
    }
