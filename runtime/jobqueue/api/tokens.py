"""Bearer credentials: short-lived tenant tokens (JWT, HS256) and the admin token.

Pure: no I/O. A tenant trades its API key for a token at POST /auth/token;
the token names the tenant (`sub`), so no request can pick its tenant from
the body or the query. The admin credential is a static secret from the
settings that acts across tenants; it is compared in constant time and is
never a JWT, so a leaked signing secret cannot mint one.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from jobqueue.models import TenantId

ALGORITHM = "HS256"
ISSUER = "jobqueue"
# Clocks of API replicas may differ a little; tokens live for minutes.
LEEWAY_SECONDS = 5
MIN_SECRET_BYTES = 32


class InvalidToken(Exception):
    """Missing, malformed, forged or expired; the message says which, never the token."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. `tenant_id` is None for the admin."""

    tenant_id: TenantId | None
    expires_at: float | None

    @property
    def admin(self) -> bool:
        return self.tenant_id is None


@dataclass(frozen=True, slots=True)
class Issued:
    token: str
    expires_in: int


def check_secret(secret: str) -> None:
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ValueError(
            f"the JWT signing secret must be at least {MIN_SECRET_BYTES} bytes "
            "(set JOBQUEUE_API_JWT_SECRET)"
        )


def issue(
    secret: str, tenant_id: TenantId, ttl_seconds: int, *, now: float | None = None
) -> Issued:
    issued_at = int(now if now is not None else time.time())
    claims = {"sub": tenant_id, "iat": issued_at, "exp": issued_at + ttl_seconds, "iss": ISSUER}
    return Issued(jwt.encode(claims, secret, algorithm=ALGORITHM), ttl_seconds)


def authenticate(credential: str, *, secret: str, admin_token: str | None) -> Principal:
    """The caller behind a bearer credential, or InvalidToken."""
    if admin_token and hmac.compare_digest(credential.encode(), admin_token.encode()):
        return Principal(tenant_id=None, expires_at=None)
    try:
        claims = jwt.decode(
            credential,
            secret,
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            leeway=LEEWAY_SECONDS,
            options={"require": ["sub", "iat", "exp", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("token expired") from None
    except jwt.InvalidTokenError:
        raise InvalidToken("invalid token") from None
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub:
        raise InvalidToken("invalid token")
    return Principal(tenant_id=TenantId(sub), expires_at=float(claims["exp"]))


class Verifier:
    """`authenticate` with a memory of the tokens that already verified.

    A busy client sends one token for thousands of requests; decoding and
    checking it each time costs more than the rest of the request's Python.
    A remembered token is still refused once it expires. Only tokens that
    verified are kept, and the memory is bounded (emptied when full).
    """

    def __init__(
        self,
        secret: str,
        admin_token: str | None,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret = secret
        self._admin_token = admin_token
        self._max = max_entries
        self._clock = clock
        self._seen: dict[str, Principal] = {}

    def __call__(self, credential: str) -> Principal:
        known = self._seen.get(credential)
        if known is not None:
            assert known.expires_at is not None
            if self._clock() <= known.expires_at + LEEWAY_SECONDS:
                return known
            del self._seen[credential]
            raise InvalidToken("token expired")
        principal = authenticate(credential, secret=self._secret, admin_token=self._admin_token)
        if principal.tenant_id is not None:
            if len(self._seen) >= self._max:
                self._seen.clear()
            self._seen[credential] = principal
        return principal

