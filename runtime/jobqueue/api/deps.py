"""Request dependencies: who calls, and may they (auth, tenant state, rate limit)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from jobqueue import errors
from jobqueue.api import http_errors, tokens
from jobqueue.api.state import Runtime, runtime
from jobqueue.db import ratelimit
from jobqueue.models import Tenant, TenantId

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A tenant token from POST /auth/token, or the admin credential.",
)


@dataclass(frozen=True, slots=True)
class Access:
    """An authenticated, enabled caller within its rate limit."""

    principal: tokens.Principal
    tenant: Tenant | None  # None for the admin

    @property
    def scope(self) -> TenantId | None:
        """The tenant every query is limited to; None (the admin) means all."""
        return self.principal.tenant_id


def authenticate(rt: Runtime, credential: str | None) -> tokens.Principal:
    if credential is None:
        raise http_errors.unauthorized("missing bearer token")
    try:
        return rt.verify(credential)
    except tokens.InvalidToken as exc:
        raise http_errors.unauthorized(str(exc)) from None


async def admit(rt: Runtime, principal: tokens.Principal, *, cost: int = 1) -> Access:
    """The tenant must exist, be enabled and have budget left; the admin always may."""
    if principal.tenant_id is None:
        return Access(principal, None)
    try:
        async with rt.deadline():
            tenant = await rt.tenants.get(rt.pool, principal.tenant_id)
            if not tenant.enabled:
                raise errors.TenantDisabled(f"tenant {tenant.id} is disabled")
            decision = await ratelimit.take(rt.pool, tenant_id=tenant.id, cost=cost)
    except errors.TenantNotFound:
        raise http_errors.unauthorized("unknown tenant") from None
    if not decision.allowed:
        raise http_errors.rate_limited(decision.retry_after_seconds)
    return Access(principal, tenant)


async def _access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Access:
    rt = runtime(request)
    principal = authenticate(rt, credentials.credentials if credentials else None)
    return await admit(rt, principal)


async def _admin(access: Annotated[Access, Depends(_access)]) -> Access:
    if not access.principal.admin:
        raise http_errors.forbidden("this view needs the admin credential")
    return access


async def _runtime(request: Request) -> Runtime:
    # async on purpose: FastAPI runs a sync dependency in a worker thread.
    return runtime(request)


AccessDep = Annotated[Access, Depends(_access)]
# The admin credential only: others get 403 (after the same authentication).
AdminDep = Annotated[Access, Depends(_admin)]
RuntimeDep = Annotated[Runtime, Depends(_runtime)]
