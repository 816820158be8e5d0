"""WS /ws/jobs: a tenant's transitions, in order, to that tenant only."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from jobqueue import db
from jobqueue.db import leases
from jobqueue.models import WorkerId
from tests.support import api as support
from tests.support.api import recv, watching, ws_url
from tests.support.procs import Proc


async def events_for(ws: ClientConnection, job_id: str, until: str) -> list[str]:
    statuses: list[str] = []
    while not statuses or statuses[-1] != until:
        event = await recv(ws)
        if event.get("job_id") == job_id:
            statuses.append(event["status"])
    return statuses


async def test_a_jobs_transitions_arrive_in_order_to_its_tenant_only(
    api: Proc,
    api_pool: db.Pool,
    tenant_a: support.TenantKey,
    tenant_b: support.TenantKey,
    client_a: httpx.AsyncClient,
    client_b: httpx.AsyncClient,
) -> None:
    token_a = await support.token(client_a, tenant_a)
    token_b = await support.token(client_b, tenant_b)
    q = f"q-{uuid.uuid4().hex[:12]}"
    async with (
        watching(ws_url(api, token_a)) as ws_a,
        watching(ws_url(api), json.dumps({"token": token_b})) as ws_b,
    ):
        job = (
            await client_a.post(
                "/v1/jobs", json={"type": "echo", "queue": q}, headers={"Idempotency-Key": "w"}
            )
        ).json()
        held = await leases.lease(
            api_pool, queue=q, worker_id=WorkerId("w"), limit=1, lease_seconds=30, start=False
        )
        await leases.start(api_pool, held=[(held[0].job_id, held[0].token)])
        await leases.ack(api_pool, done=[(held[0].job_id, held[0].token, {"ok": True})])

        seen = await events_for(ws_a, job["id"], until="succeeded")
        assert seen == ["queued", "leased", "running", "succeeded"]

        # B's own job comes after all of A's events: had any of A's reached
        # B, it would have arrived first.
        own = (
            await client_b.post("/v1/jobs", json={"type": "echo"}, headers={"Idempotency-Key": "w"})
        ).json()
        event = await recv(ws_b)
        assert event == {
            "type": "job",
            "job_id": own["id"],
            "tenant_id": tenant_b.id,
            "status": "queued",
            "queue": "default",
        }
    assert token_a not in api.text() and token_b not in api.text()


async def test_the_admin_watches_every_tenant(
    api: Proc, client_a: httpx.AsyncClient, client_b: httpx.AsyncClient
) -> None:
    async with watching(ws_url(api, support.ADMIN_TOKEN)) as ws:
        ja = (
            await client_a.post("/v1/jobs", json={"type": "echo"}, headers={"Idempotency-Key": "x"})
        ).json()
        jb = (
            await client_b.post("/v1/jobs", json={"type": "echo"}, headers={"Idempotency-Key": "x"})
        ).json()
        seen: set[str] = set()
        while not {ja["id"], jb["id"]} <= seen:
            seen.add((await recv(ws))["job_id"])


async def test_a_bad_token_is_refused_at_the_handshake_or_on_the_first_message(
    api: Proc,
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(api, "forged")):
            pass
    assert refused.value.response.status_code == 403
    async with connect(ws_url(api)) as ws:
        await ws.send(json.dumps({"token": "forged"}))
        with pytest.raises(ConnectionClosed) as closed:
            await recv(ws)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1008


async def test_a_watcher_that_falls_behind_is_dropped_and_others_carry_on(
    api_dsn: str, logs: Path, api_pool: db.Pool
) -> None:
    t = await support.tenant_with_key(api_pool)
    async with (
        support.running_api(api_dsn, logs, api_ws_queue_size=10) as server,
        support.authed(server.url, t) as client,
    ):
        token = await support.token(client, t)
        async with watching(ws_url(server, token)) as slow:
            # One statement inserting 100 jobs notifies 100 events at once,
            # ten times what a watcher may have queued.
            jobs = [{"type": "echo", "idempotency_key": f"k{i}"} for i in range(100)]
            assert (await client.post("/v1/jobs/batch", json={"jobs": jobs})).status_code == 200
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    await recv(slow)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1013
        async with watching(ws_url(server, token)) as fresh:
            r = await client.post(
                "/v1/jobs", json={"type": "echo"}, headers={"Idempotency-Key": "z"}
            )
            assert (await recv(fresh))["job_id"] == r.json()["id"]
