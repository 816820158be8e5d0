"""Unique jobs through the real API and client (docs/design.md, invariant 12)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from jobqueue.client import AsyncClient, exceptions
from tests.support import api as support
from tests.support.procs import Proc


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def test_a_duplicate_answers_200_with_the_existing_job_and_a_header(
    client_a: httpx.AsyncClient,
) -> None:
    q = f"q-{uuid.uuid4().hex[:12]}"
    body = {"type": "report", "queue": q, "data": {"account": 1, "n": 1},
            "unique": {"keys": ["account"], "period_seconds": 300, "states": ["queued"]}}
    first = await client_a.post("/v1/jobs", json=body, headers=key())
    assert first.status_code == 201, first.text
    assert "Unique-Duplicate" not in first.headers
    dup = await client_a.post("/v1/jobs", json={**body, "data": {"account": 1, "n": 2}},
                              headers=key())
    assert dup.status_code == 200, dup.text
    assert dup.headers["Unique-Duplicate"] == "true"
    assert dup.json()["id"] == first.json()["id"]
    other = await client_a.post("/v1/jobs", json={**body, "data": {"account": 2}}, headers=key())
    assert other.status_code == 201


async def test_fifty_concurrent_http_submits_make_one_job(
    client_a: httpx.AsyncClient,
) -> None:
    q = f"q-{uuid.uuid4().hex[:12]}"
    body = {"type": "report", "queue": q, "data": {"x": 1}, "unique": {}}
    answers = await asyncio.gather(
        *(client_a.post("/v1/jobs", json=body, headers=key()) for _ in range(50))
    )
    assert sorted(a.status_code for a in answers) == [200] * 49 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    listed = await client_a.get("/v1/jobs", params={"queue": q})
    assert listed.json()["total"] == 1


@pytest.mark.parametrize(
    ("unique", "field"),
    [
        ({"keys": []}, "keys"),
        ({"period_seconds": 0}, "period_seconds"),
        ({"period_seconds": "60"}, "period_seconds"),
        ({"states": ["lost"]}, "states"),
        ({"states": []}, "states"),
        ({"other": 1}, "other"),
    ],
)
async def test_bad_unique_options_are_422_and_store_nothing(
    client_a: httpx.AsyncClient, unique: dict[str, object], field: str
) -> None:
    q = f"q-{uuid.uuid4().hex[:12]}"
    r = await client_a.post("/v1/jobs", json={"type": "t", "queue": q, "unique": unique},
                            headers=key())
    assert r.status_code == 422, r.text
    assert field in r.text
    assert (await client_a.get("/v1/jobs", params={"queue": q})).json()["total"] == 0


async def test_unique_keys_on_data_that_is_not_an_object_is_422(
    client_a: httpx.AsyncClient,
) -> None:
    r = await client_a.post("/v1/jobs", json={"type": "t", "data": [1], "unique": {"keys": ["a"]}},
                            headers=key())
    assert r.status_code == 422, r.text
    assert "JSON object" in r.json()["detail"]


async def test_unique_jobs_in_a_batch_are_refused(client_a: httpx.AsyncClient) -> None:
    r = await client_a.post(
        "/v1/jobs/batch", json={"jobs": [{"type": "t", "idempotency_key": "b1", "unique": {}}]}
    )
    assert r.status_code == 422, r.text
    assert "batch" in r.json()["detail"]


async def test_the_client_sends_unique_and_checks_it_before_sending(
    api: Proc, tenant_a: support.TenantKey
) -> None:
    q = f"q-{uuid.uuid4().hex[:12]}"
    async with AsyncClient(api.url, tenant_id=tenant_a.id, api_key=tenant_a.key) as c:
        first = await c.submit("report", {"a": 1, "b": 1}, queue=q, unique={"keys": ["a"]})
        second = await c.submit("report", {"a": 1, "b": 2}, queue=q, unique={"keys": ["a"]})
        assert second.id == first.id
        with pytest.raises(exceptions.InvalidRequest) as caught:
            await c.submit("report", [1], queue=q, unique={"keys": ["a"]})
        assert caught.value.status == 0
        with pytest.raises(exceptions.InvalidRequest):
            await c.submit("report", {}, queue=q, unique={"states": ["lost"]})
