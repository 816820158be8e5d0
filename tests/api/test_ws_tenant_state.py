"""An open WebSocket answers to its tenant's current state, like a request:
disabling or deleting the tenant closes its sockets within the bound in which
HTTP starts refusing it (`tenant_cache_seconds`), and no other tenant's."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus

from jobqueue import db
from jobqueue.db import tenants
from tests.support import api as support
from tests.support.api import recv, watching, ws_url
from tests.support.procs import Proc

CACHE_SECONDS = 2.0


async def closed_within(ws: ClientConnection, seconds: float) -> tuple[int, str, float]:
    """The close frame's code and reason, and how long it took."""
    start = time.monotonic()
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await recv(ws, timeout=seconds)
    assert closed.value.rcvd is not None, "closed without a close frame"
    return closed.value.rcvd.code, closed.value.rcvd.reason, time.monotonic() - start


async def refused_within(client: httpx.AsyncClient, seconds: float) -> float:
    start = time.monotonic()
    while (await client.get("/v1/stats")).status_code == 200:
        assert time.monotonic() - start < seconds, "HTTP still serves the tenant"
        await asyncio.sleep(0.05)
    return time.monotonic() - start


@pytest.fixture(scope="module")
async def cached_api(api_dsn: str, logs: Path) -> AsyncIterator[Proc]:
    async with support.running_api(
        api_dsn, logs, api_tenant_cache_seconds=CACHE_SECONDS
    ) as server:
        yield server


async def test_disabling_a_tenant_closes_its_sockets_as_soon_as_http_refuses_it(
    cached_api: Proc, api_pool: db.Pool
) -> None:
    gone = await support.tenant_with_key(api_pool)
    other = await support.tenant_with_key(api_pool)
    async with (
        support.authed(cached_api.url, gone) as client,
        support.authed(cached_api.url, other) as other_client,
    ):
        token = await support.token(client, gone)
        async with (
            watching(ws_url(cached_api, token)) as ws1,
            watching(ws_url(cached_api, token)) as ws2,
            watching(ws_url(cached_api, await support.token(other_client, other))) as bystander,
        ):
            await tenants.update(api_pool, tenant_id=gone.id, enabled=False)
            http_after = await refused_within(client, CACHE_SECONDS + 2)
            for ws in (ws1, ws2):
                code, reason, took = await closed_within(ws, CACHE_SECONDS + 2)
                assert (code, reason) == (4403, f"tenant {gone.id} is disabled")
                assert took <= CACHE_SECONDS + 1.0, took
            assert http_after <= CACHE_SECONDS + 1.0
            # The other tenant's socket still streams.
            r = await other_client.post(
                "/v1/jobs", json={"type": "echo"}, headers={"Idempotency-Key": "still"}
            )
            assert (await recv(bystander))["job_id"] == r.json()["id"]
        # And a new socket of the disabled tenant is refused at the handshake.
        with pytest.raises(InvalidStatus):
            async with watching(ws_url(cached_api, token)):
                pass


async def test_deleting_a_tenant_closes_its_sockets_with_4401(
    api: Proc, api_pool: db.Pool
) -> None:
    gone = await support.tenant_with_key(api_pool)
    async with watching(ws_url(api, support.mint(gone.id))) as ws:
        # No db function deletes a tenant (the operator disables it); an
        # operator at a psql prompt might.
        await api_pool.execute("DELETE FROM tenants WHERE id = $1", gone.id)
        code, reason, took = await closed_within(ws, 5)
    assert (code, reason) == (4401, f"tenant {gone.id} was deleted")
    assert took < 2.0  # tenant_cache_seconds=0: the check runs every half second


async def test_the_admins_socket_is_not_closed_by_a_tenant_going_away(
    api: Proc, api_pool: db.Pool, client_a: httpx.AsyncClient
) -> None:
    gone = await support.tenant_with_key(api_pool)
    async with (
        watching(ws_url(api, support.ADMIN_TOKEN)) as admin,
        watching(ws_url(api, support.mint(gone.id))) as ws,
    ):
        await tenants.update(api_pool, tenant_id=gone.id, enabled=False)
        code, _, _ = await closed_within(ws, 5)
        assert code == 4403
        r = await client_a.post("/v1/jobs", json={"type": "echo"}, headers={"Idempotency-Key": "a"})
        while (await recv(admin)).get("job_id") != r.json()["id"]:
            pass
