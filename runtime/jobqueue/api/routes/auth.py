"""POST /auth/token: a tenant trades its API key for a short-lived token."""

from __future__ import annotations

import hmac

from fastapi import APIRouter

from jobqueue import apikeys, errors
from jobqueue.api import auth
from jobqueue.api import errors as api_errors
from jobqueue.api.deps import RuntimeDep
from jobqueue.api.routes import docs
from jobqueue.api.schemas import TokenIn, TokenOut
from jobqueue.db import ratelimit, tenants
from jobqueue.models import TenantId

router = APIRouter(tags=["auth"])

# One answer for an unknown tenant and a wrong key: neither is confirmed.
_BAD_CREDENTIALS = "invalid tenant or API key"


@router.post(
    "/auth/token",
    response_model=TokenOut,
    summary="Get a bearer token for a tenant",
    description=(
        "The API key is checked against its stored hash in constant time. The admin "
        "credential in place of an API key gives a token for any tenant."
    ),
    responses=docs.errors(401, 403, 422, 429, 503),
)
async def token(body: TokenIn, rt: RuntimeDep) -> TokenOut:
    tenant_id = TenantId(body.tenant_id)
    async with rt.deadline():
        try:
            creds = await tenants.credentials(rt.pool, tenant_id=tenant_id)
        except errors.TenantNotFound:
            raise api_errors.unauthorized(_BAD_CREDENTIALS) from None
        is_admin = rt.admin_token is not None and hmac.compare_digest(
            body.api_key.encode(), rt.admin_token.encode()
        )
        if not (apikeys.matches(body.api_key, creds.key_hashes) or is_admin):
            raise api_errors.unauthorized(_BAD_CREDENTIALS)
        if not creds.enabled:
            raise errors.TenantDisabled(f"tenant {tenant_id} is disabled")
        decision = await ratelimit.take(rt.pool, tenant_id=tenant_id)
    if not decision.allowed:
        raise api_errors.rate_limited(decision.retry_after_seconds)
    issued = auth.issue(rt.secret, tenant_id, rt.settings.token_ttl_seconds)
    return TokenOut(access_token=issued.token, expires_in=issued.expires_in)
