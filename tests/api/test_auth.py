"""POST /auth/token and bearer checks, through a real server."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt

from jobqueue import db
from jobqueue.db import tenants
from tests.support import api as support
from tests.support.procs import Proc


async def test_an_api_key_buys_a_short_lived_signed_token(
    anon: httpx.AsyncClient, tenant_a: support.TenantKey
) -> None:
    r = await anon.post("/auth/token", json={"tenant_id": tenant_a.id, "api_key": tenant_a.key})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer"
    assert 0 < body["expires_in"] <= 3600
    claims = jwt.decode(
        body["access_token"], support.JWT_SECRET, algorithms=["HS256"], issuer="jobqueue"
    )
    assert claims["sub"] == tenant_a.id
    assert claims["exp"] - claims["iat"] == body["expires_in"]


async def test_a_wrong_key_or_unknown_tenant_is_refused_alike(
    anon: httpx.AsyncClient, tenant_a: support.TenantKey, tenant_b: support.TenantKey
) -> None:
    wrong_key = await anon.post(
        "/auth/token", json={"tenant_id": tenant_a.id, "api_key": tenant_b.key}
    )
    unknown = await anon.post(
        "/auth/token", json={"tenant_id": "no-such-tenant", "api_key": tenant_a.key}
    )
    assert wrong_key.status_code == unknown.status_code == 401
    assert (
        wrong_key.json()
        == unknown.json()
        == {
            "error": "unauthorized",
            "detail": "invalid tenant or API key",
        }
    )


async def test_a_revoked_key_no_longer_buys_tokens(
    anon: httpx.AsyncClient, api_pool: db.Pool
) -> None:
    t = await support.tenant_with_key(api_pool)
    await tenants.revoke_api_keys(api_pool, tenant_id=t.id)
    r = await anon.post("/auth/token", json={"tenant_id": t.id, "api_key": t.key})
    assert r.status_code == 401


async def test_a_disabled_tenant_gets_403_for_tokens_and_with_the_token_it_holds(
    api: Proc, api_pool: db.Pool
) -> None:
    t = await support.tenant_with_key(api_pool)
    async with support.authed(api.url, t) as client:
        assert (await client.get("/v1/jobs")).status_code == 200
        await tenants.update(api_pool, tenant_id=t.id, enabled=False)
        refused = await client.get("/v1/jobs")
        assert refused.status_code == 403
        assert refused.json()["error"] == "tenant_disabled"
        again = await client.post("/auth/token", json={"tenant_id": t.id, "api_key": t.key})
        assert again.status_code == 403


async def test_expired_forged_and_malformed_tokens_are_refused(
    anon: httpx.AsyncClient, tenant_a: support.TenantKey
) -> None:
    now = int(time.time())
    expired = jwt.encode(
        {"sub": tenant_a.id, "iat": now - 3600, "exp": now - 60, "iss": "jobqueue"},
        support.JWT_SECRET,
        algorithm="HS256",
    )
    forged = jwt.encode(
        {"sub": tenant_a.id, "iat": now, "exp": now + 600, "iss": "jobqueue"},
        "some-other-secret-of-the-same-length-xxxxxxxxx",
        algorithm="HS256",
    )
    unsigned = jwt.encode(
        {"sub": tenant_a.id, "iat": now, "exp": now + 600, "iss": "jobqueue"},
        None,
        algorithm="none",
    )
    for credential, detail in [
        (expired, "token expired"),
        (forged, "invalid token"),
        (unsigned, "invalid token"),
        ("not-a-jwt", "invalid token"),
    ]:
        r = await anon.get("/v1/jobs", headers=support.bearer(credential))
        assert r.status_code == 401, credential
        assert r.json() == {"error": "unauthorized", "detail": detail}
        assert r.headers["www-authenticate"] == "Bearer"
    missing = await anon.get("/v1/jobs")
    assert missing.status_code == 401
    assert missing.json()["detail"] == "missing bearer token"


async def test_the_tenant_comes_from_the_token_never_from_the_body(
    client_a: httpx.AsyncClient, tenant_a: support.TenantKey, tenant_b: support.TenantKey
) -> None:
    r = await client_a.post(
        "/v1/jobs",
        json={"type": "echo", "tenant_id": tenant_b.id},
        headers={"Idempotency-Key": "body-tenant"},
    )
    assert r.status_code == 422
    ok = await client_a.post(
        "/v1/jobs?tenant_id=" + tenant_b.id,
        json={"type": "echo"},
        headers={"Idempotency-Key": "query-tenant"},
    )
    assert ok.status_code == 201
    assert ok.json()["tenant_id"] == tenant_a.id


async def test_the_admin_credential_reads_and_changes_every_tenants_jobs(
    admin: httpx.AsyncClient, client_a: httpx.AsyncClient, client_b: httpx.AsyncClient
) -> None:
    ja = (
        await client_a.post("/v1/jobs", json={"type": "echo"}, headers={"Idempotency-Key": "a1"})
    ).json()
    jb = (
        await client_b.post("/v1/jobs", json={"type": "echo"}, headers={"Idempotency-Key": "b1"})
    ).json()
    assert (await admin.get(f"/v1/jobs/{ja['id']}")).status_code == 200
    assert (await admin.get(f"/v1/jobs/{jb['id']}")).status_code == 200
    listed = {j["id"] for j in (await admin.get("/v1/jobs?page_size=1000")).json()["jobs"]}
    assert {ja["id"], jb["id"]} <= listed
    assert (await admin.post(f"/v1/jobs/{jb['id']}/cancel")).json()["status"] == "cancelled"
    # A job needs an owner: the admin submits through a tenant token.
    refused = await admin.post(
        "/v1/jobs", json={"type": "echo"}, headers={"Idempotency-Key": "adm"}
    )
    assert refused.status_code == 403


async def test_the_admin_credential_buys_a_token_for_any_tenant(
    anon: httpx.AsyncClient, tenant_a: support.TenantKey
) -> None:
    r = await anon.post(
        "/auth/token", json={"tenant_id": tenant_a.id, "api_key": support.ADMIN_TOKEN}
    )
    assert r.status_code == 200
    job = await anon.post(
        "/v1/jobs",
        json={"type": "echo"},
        headers={**support.bearer(r.json()["access_token"]), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert job.status_code == 201
    assert job.json()["tenant_id"] == tenant_a.id
