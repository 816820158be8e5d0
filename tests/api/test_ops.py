"""Probes, metrics, docs, and riding out a database outage."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from jobqueue import db
from jobqueue.db import jobs
from jobqueue.models import JobId
from tests.support import api as support
from tests.support.proxy import TcpProxy
from tests.support.wait import eventually


async def test_probes_metrics_and_docs(
    anon: httpx.AsyncClient, client_a: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    assert (await anon.get("/healthz")).json() == {"status": "ok", "detail": None}
    assert (await anon.get("/readyz")).status_code == 200
    job = (
        await client_a.post("/v1/jobs", json={"type": "echo"}, headers={"Idempotency-Key": "m"})
    ).json()
    await client_a.get(f"/v1/jobs/{job['id']}")
    await anon.get("/no/such/path")
    metrics = (await admin.get("/metrics")).text
    # Route templates, never raw paths (no job id in a label).
    assert 'api_requests_total{endpoint="/v1/jobs/{job_id}",method="GET",status="200"}' in metrics
    assert 'endpoint="<unmatched>"' in metrics
    assert job["id"] not in metrics
    assert "api_request_latency_seconds_bucket" in metrics
    assert "jobs_submitted_total{" in metrics
    docs = await anon.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    spec = (await anon.get("/openapi.json")).json()
    assert {"/auth/token", "/v1/jobs", "/v1/jobs/batch", "/v1/stats"} <= set(spec["paths"])


async def test_errors_are_json_everywhere(anon: httpx.AsyncClient) -> None:
    for r in [
        await anon.get("/no/such/path"),
        await anon.delete("/v1/jobs"),
        await anon.post("/auth/token", json={"tenant_id": "Not Valid!", "api_key": "x"}),
        await anon.get("/v1/stats"),
    ]:
        assert r.headers["content-type"] == "application/json", r.text
        assert set(r.json()) >= {"error", "detail"}, r.text
        assert isinstance(r.json()["detail"], str)


@pytest.fixture
def proxy(api_dsn: str) -> Iterator[TcpProxy]:
    p = TcpProxy.to(api_dsn)
    yield p
    p.stop()


async def test_a_database_outage_gives_503_with_retry_after_and_the_api_recovers_alone(
    api_dsn: str, api_pool: db.Pool, logs: Path, proxy: TcpProxy
) -> None:
    t = await support.tenant_with_key(api_pool)
    token = support.mint(t.id)
    headers = support.bearer(token)
    async with (
        support.running_api(proxy.dsn_via(api_dsn), logs, api_tenant_cache_seconds=0) as server,
        httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client,
        connect(server.url.replace("http", "ws", 1) + "/ws/jobs?token=" + token) as ws,
    ):
        assert json.loads(await ws.recv()) == {"type": "ready"}
        assert (await client.get("/readyz")).status_code == 200
        proxy.cut()
        for _ in range(3):  # also after the pool noticed its connections are gone
            down = await client.post(
                "/v1/jobs", json={"type": "echo"}, headers={"Idempotency-Key": str(uuid.uuid4())}
            )
            assert down.status_code == 503, down.text
            assert down.json()["error"] == "unavailable"
            assert int(down.headers["retry-after"]) >= 1
            not_ready = await client.get("/readyz")
            assert not_ready.status_code == 503
            assert "retry-after" in not_ready.headers
            assert (await client.get("/healthz")).status_code == 200
        assert "Traceback" not in server.text()

        proxy.restore()
        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready, timeout=15, interval=0.1, what="the API to recover")
        # The watcher is told it may have missed events, then sees new ones.
        assert json.loads(await asyncio.wait_for(ws.recv(), 15)) == {"type": "resync"}
        r = await client.post("/v1/jobs", json={"type": "echo"}, headers={"Idempotency-Key": "up"})
        assert r.status_code == 201, r.text
        event = json.loads(await asyncio.wait_for(ws.recv(), 15))
        assert (event["job_id"], event["status"]) == (r.json()["id"], "queued")
        assert token not in server.text()  # uvicorn logs handshakes with their query
    proxy.cut()


async def test_submit_job_span_joins_the_callers_trace_and_travels_in_the_job_row(
    api_dsn: str, api_pool: db.Pool, logs: Path
) -> None:
    t = await support.tenant_with_key(api_pool)
    caller_trace = uuid.uuid4().hex
    traceparent = f"00-{caller_trace}-{uuid.uuid4().hex[:16]}-01"
    async with (
        support.running_api(api_dsn, logs, OTEL_TRACES_EXPORTER="console") as server,
        httpx.AsyncClient(base_url=server.url, headers=support.bearer(support.mint(t.id))) as c,
    ):
        r = await c.post(
            "/v1/jobs",
            json={"type": "echo"},
            headers={"Idempotency-Key": "traced", "traceparent": traceparent},
        )
        assert r.status_code == 201
        job = await jobs.get(api_pool, job_id=JobId(uuid.UUID(r.json()["id"])))
    assert job.trace_context is not None
    _, trace_id, span_id, _ = job.trace_context["traceparent"].split("-")
    assert trace_id == caller_trace  # the worker's spans will join this trace
    # Exported on shutdown (batched): the span the row names, in the caller's trace.
    spans = [json.loads(line) for line in server.text().splitlines() if '"submit_job"' in line]
    assert [s["context"]["trace_id"] for s in spans] == [f"0x{caller_trace}"]
    assert [s["context"]["span_id"] for s in spans] == [f"0x{span_id}"]


async def test_a_bug_is_a_json_500_logged_once_without_secrets(dsn: str, logs: Path) -> None:
    pool = await db.create_pool(dsn)
    try:
        t = await support.tenant_with_key(pool)
        # A schema the code does not expect: the query fails in a way no
        # domain error covers.
        await pool.execute("ALTER TABLE api_keys RENAME TO api_keys_elsewhere")
    finally:
        await pool.close()
    async with (
        support.running_api(dsn, logs) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        r = await client.post("/auth/token", json={"tenant_id": t.id, "api_key": t.key})
        assert r.status_code == 500
        assert r.json() == {"error": "internal", "detail": "internal error"}
        assert "Traceback" not in r.text
        assert (await client.get("/healthz")).status_code == 200
    log = server.text()
    assert log.count('"unhandled error"') == 1
    assert "UndefinedTableError" in log
    assert t.key not in log and "locals" not in log
