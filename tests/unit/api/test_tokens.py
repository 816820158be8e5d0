"""Tenant tokens and the admin credential (pure)."""

from __future__ import annotations

import time

import jwt
import pytest

from jobqueue.api import tokens
from jobqueue.models import TenantId

SECRET = "s" * 32
ADMIN = "a" * 40


def test_an_issued_token_names_its_tenant_and_expiry() -> None:
    issued = tokens.issue(SECRET, TenantId("acme"), 300)
    who = tokens.authenticate(issued.token, secret=SECRET, admin_token=None)
    assert who.tenant_id == "acme" and not who.admin
    assert who.expires_at is not None and 290 < who.expires_at - time.time() <= 300
    assert issued.expires_in == 300


def test_expired_forged_and_unsigned_tokens_are_refused() -> None:
    expired = tokens.issue(SECRET, TenantId("acme"), 60, now=time.time() - 3600).token
    with pytest.raises(tokens.InvalidToken, match="expired"):
        tokens.authenticate(expired, secret=SECRET, admin_token=None)
    forged = tokens.issue("f" * 32, TenantId("acme"), 60).token
    with pytest.raises(tokens.InvalidToken, match="invalid"):
        tokens.authenticate(forged, secret=SECRET, admin_token=None)
    claims = {
        "sub": "acme",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
        "iss": "jobqueue",
    }
    unsigned = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(tokens.InvalidToken):
        tokens.authenticate(unsigned, secret=SECRET, admin_token=None)
    no_exp = jwt.encode({"sub": "acme", "iat": 1, "iss": "jobqueue"}, SECRET, algorithm="HS256")
    with pytest.raises(tokens.InvalidToken):
        tokens.authenticate(no_exp, secret=SECRET, admin_token=None)


def test_a_small_clock_skew_is_tolerated() -> None:
    just_expired = tokens.issue(SECRET, TenantId("acme"), 60, now=time.time() - 62).token
    assert tokens.authenticate(just_expired, secret=SECRET, admin_token=None).tenant_id == "acme"


def test_the_admin_credential_acts_across_tenants_and_only_when_configured() -> None:
    who = tokens.authenticate(ADMIN, secret=SECRET, admin_token=ADMIN)
    assert who.admin and who.tenant_id is None and who.expires_at is None
    with pytest.raises(tokens.InvalidToken):
        tokens.authenticate(ADMIN, secret=SECRET, admin_token=None)
    with pytest.raises(tokens.InvalidToken):
        tokens.authenticate(ADMIN + "x", secret=SECRET, admin_token=ADMIN)


def test_a_short_signing_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        tokens.check_secret("short")
    tokens.check_secret(SECRET)


def test_the_verifier_remembers_good_tokens_until_they_expire() -> None:
    now = [time.time()]
    verify = tokens.Verifier(SECRET, ADMIN, max_entries=2, clock=lambda: now[0])
    token = tokens.issue(SECRET, TenantId("acme"), 60).token
    assert verify(token).tenant_id == "acme"
    assert verify(token).tenant_id == "acme"  # from memory
    with pytest.raises(tokens.InvalidToken):
        verify(tokens.issue("f" * 32, TenantId("acme"), 60).token)
    assert verify(ADMIN).admin
    now[0] += 60 + tokens.LEEWAY_SECONDS + 1
    with pytest.raises(tokens.InvalidToken, match="expired"):
        verify(token)
    old = tokens.issue(SECRET, TenantId("acme"), 60, now=time.time() - 3600).token
    with pytest.raises(tokens.InvalidToken, match="expired"):
        verify(old)  # never remembered
