"""Metrics name every tenant and queue: on the public port only the admin
credential reads them; Prometheus scrapes the metrics port of their own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from jobqueue import db
from jobqueue.embedded import free_port
from tests.support import api as support


async def test_public_metrics_need_the_admin_credential(
    anon: httpx.AsyncClient, client_a: httpx.AsyncClient, admin: httpx.AsyncClient,
    tenant_a: support.TenantKey,
) -> None:
    r = await client_a.post("/v1/jobs", json={"type": "echo"}, headers={"Idempotency-Key": "m"})
    assert r.status_code == 201
    refused = await anon.get("/metrics")
    assert refused.status_code == 401 and refused.json()["error"] == "unauthorized"
    forged = await anon.get("/metrics", headers=support.bearer("forged"))
    assert forged.status_code == 401
    tenant = await client_a.get("/metrics")
    assert tenant.status_code == 403 and tenant.json()["error"] == "forbidden"
    for answer in (refused, forged, tenant):
        assert tenant_a.id not in answer.text
    served = await admin.get("/metrics")
    assert served.status_code == 200
    assert f'tenant_id="{tenant_a.id}"' in served.text


async def test_the_metrics_port_serves_prometheus_without_credentials(
    api_dsn: str, logs: Path, api_pool: db.Pool
) -> None:
    t = await support.tenant_with_key(api_pool)
    metrics_port = free_port()
    async with (
        support.running_api(api_dsn, logs, api_metrics_port=metrics_port) as server,
        support.authed(server.url, t) as client,
    ):
        r = await client.post("/v1/jobs", json={"type": "echo"}, headers={"Idempotency-Key": "p"})
        assert r.status_code == 201
        async with httpx.AsyncClient(timeout=10) as scraper:
            scraped = await scraper.get(f"http://127.0.0.1:{metrics_port}/metrics")
            public = await scraper.get(f"{server.url}/metrics")
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        assert f'jobs_submitted_total{{priority="normal",tenant_id="{t.id}"}} 1.0' in scraped.text
        assert public.status_code == 401


def test_a_metrics_port_equal_to_the_api_port_is_refused_in_one_line(
    api_dsn: str, logs: Path
) -> None:
    port = free_port()
    env = support.api_process(api_dsn, logs, port=port, api_metrics_port=port).environment()
    done = subprocess.run(
        [sys.executable, "-m", "jobqueue.cli", "api"], env=env, capture_output=True, text=True,
        timeout=60,
    )
    assert done.returncode in (1, 2), done
    assert "metrics_port" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr
