"""Failure budgets of POST /auth/token: who a wrong key is counted against.

Two budgets (GCRA in PostgreSQL, `db.ratelimit`), shared by every replica:
one per client address, one per tenant id named. The policy is the route's
(routes/auth.py); this module names the budgets.

The client address is the peer's, or the one a trusted proxy forwards
(uvicorn's proxy headers, trusted from FORWARDED_ALLOW_IPS only). IPv6
addresses count by /64, the block one host usually holds, so a guesser
cannot take a fresh budget per address of its own prefix.
"""

from __future__ import annotations

import ipaddress

from jobqueue.db.ratelimit import Budget
from jobqueue.models import TenantId
from jobqueue.settings import ApiSettings

IPV6_PREFIX = 64


def client_key(host: str | None) -> str:
    if not host:
        return "addr:unknown"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return f"addr:{host[:100]}"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return f"addr:{ip.ipv4_mapped}"
        return f"addr:{ipaddress.IPv6Network((ip, IPV6_PREFIX), strict=False)}"
    return f"addr:{ip}"


def address_budget(settings: ApiSettings, host: str | None) -> Budget:
    return Budget(
        client_key(host),
        settings.auth_address_failures_per_minute,
        settings.auth_address_failure_burst,
    )


def tenant_budget(settings: ApiSettings, tenant_id: TenantId) -> Budget:
    return Budget(
        f"tenant:{tenant_id}",
        settings.auth_tenant_failures_per_minute,
        settings.auth_tenant_failure_burst,
    )
