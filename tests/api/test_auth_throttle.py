"""Wrong API keys at POST /auth/token are limited per client address and per
tenant, on a real server and PostgreSQL; the owner is never locked out by
guessers elsewhere. Addresses come through X-Forwarded-For, which uvicorn
trusts from 127.0.0.1 (FORWARDED_ALLOW_IPS), as from an ingress."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from jobqueue import db
from tests.support import api as support
from tests.support.procs import Proc

ADDRESS_BURST, ADDRESS_PER_MINUTE = 3, 6  # then one per 10 s
TENANT_BURST, TENANT_PER_MINUTE = 5, 6


@pytest.fixture(scope="module")
async def server(api_dsn: str, logs: Path) -> AsyncIterator[Proc]:
    async with support.running_api(
        api_dsn,
        logs,
        api_auth_address_failure_burst=ADDRESS_BURST,
        api_auth_address_failures_per_minute=ADDRESS_PER_MINUTE,
        api_auth_tenant_failure_burst=TENANT_BURST,
        api_auth_tenant_failures_per_minute=TENANT_PER_MINUTE,
    ) as s:
        yield s


@pytest.fixture
async def http(server: Proc) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


async def login(http: httpx.AsyncClient, tenant: str, key: str, address: str) -> httpx.Response:
    return await http.post(
        "/auth/token",
        json={"tenant_id": tenant, "api_key": key},
        headers={"X-Forwarded-For": address},
    )


WRONG = "jq_" + "w" * 40


async def test_one_address_gets_its_burst_of_wrong_keys_then_429_with_retry_after(
    http: httpx.AsyncClient, api_pool: db.Pool
) -> None:
    t = await support.tenant_with_key(api_pool)
    start = time.monotonic()
    codes = [(await login(http, t.id, WRONG, "10.1.0.1")).status_code for _ in range(50)]
    elapsed = time.monotonic() - start
    assert codes[:ADDRESS_BURST] == [401] * ADDRESS_BURST
    assert set(codes[ADDRESS_BURST:]) == {429}, codes
    refused = await login(http, t.id, WRONG, "10.1.0.1")
    assert refused.json()["error"] == "too_many_failures"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60 / ADDRESS_PER_MINUTE * ADDRESS_BURST
    # Of 50 guesses in `elapsed` seconds only the burst was checked.
    assert elapsed < 30
    # The same address is refused even with the right key until it has room...
    assert (await login(http, t.id, t.key, "10.1.0.1")).status_code == 429
    # ...while the owner, elsewhere, is not affected.
    assert (await login(http, t.id, t.key, "10.1.0.2")).status_code == 200


async def test_a_besieged_tenant_still_lets_its_owner_in_and_slows_every_guesser(
    http: httpx.AsyncClient, api_pool: db.Pool
) -> None:
    t = await support.tenant_with_key(api_pool)
    # Many addresses, one guess each: the tenant's budget runs out.
    codes = [
        (await login(http, t.id, WRONG, f"10.2.0.{i}")).status_code
        for i in range(1, TENANT_BURST + 1)
    ]
    assert codes == [401] * TENANT_BURST
    # The next guesser is refused at its first wrong key, and that spends
    # its whole budget: its next try, even right, is refused.
    besieged = await login(http, t.id, WRONG, "10.2.1.1")
    assert besieged.status_code == 429 and "Retry-After" in besieged.headers
    assert (await login(http, t.id, WRONG, "10.2.1.1")).status_code == 429
    assert (await login(http, t.id, t.key, "10.2.1.1")).status_code == 429
    # The owner's right key, from an address within its budget, still works.
    owner = await login(http, t.id, t.key, "10.2.9.9")
    assert owner.status_code == 200, owner.text
    # Another tenant's budget is its own.
    other = await support.tenant_with_key(api_pool)
    assert (await login(http, other.id, WRONG, "10.2.2.1")).status_code == 401


async def test_an_unknown_tenant_is_counted_like_a_wrong_key(http: httpx.AsyncClient) -> None:
    codes = [
        (await login(http, "no-such-tenant", WRONG, "10.3.0.1")).status_code
        for _ in range(ADDRESS_BURST + 2)
    ]
    assert codes == [401] * ADDRESS_BURST + [429, 429]


async def test_ipv6_addresses_of_one_slash_64_share_a_budget(
    http: httpx.AsyncClient, api_pool: db.Pool
) -> None:
    t = await support.tenant_with_key(api_pool)
    codes = [
        (await login(http, t.id, WRONG, f"2001:db8:0:1::{i:x}")).status_code
        for i in range(1, ADDRESS_BURST + 2)
    ]
    assert codes == [401] * ADDRESS_BURST + [429]
    assert (await login(http, t.id, t.key, "2001:db8:0:2::1")).status_code == 200
