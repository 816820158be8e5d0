"""A tenant never sees or touches another tenant's jobs (ids do not leak)."""

from __future__ import annotations

import uuid

import httpx

from jobqueue import db
from jobqueue.db import jobs
from jobqueue.models import JobId, JobStatus


async def test_tenant_a_cannot_read_list_retry_cancel_or_count_tenant_bs_jobs(
    client_a: httpx.AsyncClient, client_b: httpx.AsyncClient, api_pool: db.Pool
) -> None:
    queued = (
        await client_b.post("/v1/jobs", json={"type": "echo"}, headers={"Idempotency-Key": "q"})
    ).json()
    cancelled = (
        await client_b.post("/v1/jobs", json={"type": "echo"}, headers={"Idempotency-Key": "c"})
    ).json()
    assert (await client_b.post(f"/v1/jobs/{cancelled['id']}/cancel")).status_code == 200

    for method, path in [
        ("GET", f"/v1/jobs/{queued['id']}"),
        ("POST", f"/v1/jobs/{queued['id']}/cancel"),
        ("POST", f"/v1/jobs/{cancelled['id']}/retry"),
    ]:
        r = await client_a.request(method, path)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"] == "not_found"
    assert (await client_a.get("/v1/jobs")).json() == {
        "jobs": [],
        "total": 0,
        "total_exact": True,
        "page": 1,
        "page_size": 50,
        "next": None,
    }
    assert (await client_a.get("/v1/stats")).json()["depth"] == []

    # Nothing changed on B's side.
    still = await jobs.get(api_pool, job_id=JobId(uuid.UUID(queued["id"])))
    assert still.status is JobStatus.QUEUED
    gone = await jobs.get(api_pool, job_id=JobId(uuid.UUID(cancelled["id"])))
    assert gone.status is JobStatus.CANCELLED
    assert (await client_b.get("/v1/jobs")).json()["total"] == 2
