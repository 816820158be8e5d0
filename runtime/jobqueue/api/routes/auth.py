"""POST /auth/token: a tenant trades its API key for a short-lived token."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request

from jobqueue import apikeys, errors
from jobqueue.api import http_errors, throttle, tokens
from jobqueue.api.deps import RuntimeDep
from jobqueue.api.routes import docs
from jobqueue.api.schemas import TokenIn, TokenOut
from jobqueue.api.state import Runtime
from jobqueue.db import ratelimit, tenants
from jobqueue.models import TenantId

router = APIRouter(tags=["auth"])

# One answer for an unknown tenant and a wrong key: neither is confirmed.
_BAD_CREDENTIALS = "invalid tenant or API key"


def _too_many(wait: float) -> http_errors.HttpError:
    return http_errors.HttpError(
        429,
        "too_many_failures",
        f"too many wrong API keys; retry in {wait:.0f}s",
        retry_after=wait,
    )


async def _valid(rt: Runtime, body: TokenIn) -> tuple[bool, bool]:
    """(the key is right, the tenant is enabled); an unknown tenant is a wrong key."""
    try:
        creds = await tenants.credentials(rt.pool, tenant_id=TenantId(body.tenant_id))
    except errors.TenantNotFound:
        return False, False
    is_admin = rt.admin_token is not None and hmac.compare_digest(
        body.api_key.encode(), rt.admin_token.encode()
    )
    return apikeys.matches(body.api_key, creds.key_hashes) or is_admin, creds.enabled


@router.post(
    "/auth/token",
    response_model=TokenOut,
    summary="Get a bearer token for a tenant",
    description=(
        "The API key is checked against its stored hash in constant time. The admin "
        "credential in place of an API key gives a token for any tenant. Wrong keys "
        "are limited per client address and per tenant (429 with Retry-After)."
    ),
    responses=docs.errors(401, 403, 422, 429, 503),
)
async def token(body: TokenIn, rt: RuntimeDep, request: Request) -> TokenOut:
    """Wrong keys spend two budgets: the client address's and the tenant's.

    The policy, so that guessing is slow and the owner is never locked out:

    1. An address with no room for one more failure gets 429 and its wait in
       Retry-After; its key is not even checked.
    2. A right key gets a token (or 403 if the tenant is disabled), whatever
       the tenant's budget: guessers elsewhere cannot lock the owner out.
    3. A wrong key spends one failure of the tenant's budget and one of the
       address's; 401. While the tenant's budget is empty (many addresses are
       guessing it), a wrong key spends the address's whole budget and
       answers 429: each address then gets one guess per
       burst / rate of its own budget (20 / 10 a minute: one per 2 minutes).

    An unknown tenant counts as a wrong key, so answers say nothing about
    which tenants exist.
    """
    tenant_id = TenantId(body.tenant_id)
    host = request.client.host if request.client else None
    address = throttle.address_budget(rt.settings, host)
    tenant = throttle.tenant_budget(rt.settings, tenant_id)
    async with rt.deadline():
        waits = await ratelimit.failure_waits(rt.pool, budgets=[address, tenant])
        if waits[address.key] > 0:
            raise _too_many(waits[address.key])
        right, enabled = await _valid(rt, body)
        if not right:
            besieged = waits[tenant.key] > 0
            cost = address.burst if besieged else 1
            after = await ratelimit.charge_failures(
                rt.pool, charges=[(address, cost), (tenant, 1)]
            )
            if besieged:
                raise _too_many(after[address.key])
            raise http_errors.unauthorized(_BAD_CREDENTIALS)
        if not enabled:
            raise errors.TenantDisabled(f"tenant {tenant_id} is disabled")
        decision = await ratelimit.take(rt.pool, tenant_id=tenant_id)
    if not decision.allowed:
        raise http_errors.rate_limited(decision.retry_after_seconds)
    issued = tokens.issue(rt.secret, tenant_id, rt.settings.token_ttl_seconds)
    return TokenOut(access_token=issued.token, expires_in=issued.expires_in)
