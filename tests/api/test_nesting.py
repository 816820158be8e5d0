"""Nesting is limited to MAX_JSON_DEPTH at the HTTP entrances, and every read
answers for rows stored before the limit (they used to answer 500).

Rows "stored before the limit" are made by submitting a job and then
rewriting its payload or result with SQL, as the old code let them be.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from jobqueue import db
from jobqueue.models import JobId
from jobqueue.validation import MAX_JSON_DEPTH
from tests.support import api as support


def nested(depth: int) -> Any:
    """A value `depth` levels deep: arrays and objects in turn, a scalar inside."""
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def raw_nested(depth: int) -> str:
    """JSON text `depth` arrays deep, for depths Python could not encode."""
    return "[" * depth + "1" + "]" * depth


async def count_jobs(pool: db.Pool, tenant: support.TenantKey) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM jobs WHERE tenant_id = $1", tenant.id))


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def test_the_limit_is_accepted_and_read_back_exactly(client_a: httpx.AsyncClient) -> None:
    data = nested(MAX_JSON_DEPTH)
    r = await client_a.post("/v1/jobs", json={"type": "echo", "data": data}, headers=key())
    assert r.status_code == 201, r.text
    assert r.json()["data"] == data
    got = await client_a.get(f"/v1/jobs/{r.json()['id']}")
    assert got.status_code == 200 and got.json()["data"] == data
    assert got.json()["omitted"] is None


async def test_one_level_past_the_limit_is_refused_and_nothing_stored(
    client_a: httpx.AsyncClient, api_pool: db.Pool, tenant_a: support.TenantKey
) -> None:
    for depth in (MAX_JSON_DEPTH + 1, 300, 900):
        r = await client_a.post(
            "/v1/jobs", json={"type": "echo", "data": nested(depth)}, headers=key()
        )
        assert r.status_code == 422, (depth, r.text)
        assert f"{MAX_JSON_DEPTH} levels" in r.text
    # Deeper than Python's json module parses: a client error, not a 500.
    r = await client_a.post(
        "/v1/jobs", content='{"type": "echo", "data": ' + raw_nested(5000) + "}",
        headers={**key(), "Content-Type": "application/json"},
    )
    assert r.status_code in (400, 422), r.text
    assert await count_jobs(api_pool, tenant_a) == 0


async def test_a_batch_with_one_deep_item_is_refused_whole(
    client_a: httpx.AsyncClient, api_pool: db.Pool, tenant_a: support.TenantKey
) -> None:
    items = [
        {"type": "echo", "data": {"n": 1}, "idempotency_key": "ok-1"},
        {"type": "echo", "data": nested(400), "idempotency_key": "deep-1"},
    ]
    r = await client_a.post("/v1/jobs/batch", json={"jobs": items})
    assert r.status_code == 422, r.text
    assert f"{MAX_JSON_DEPTH} levels" in r.text
    assert await count_jobs(api_pool, tenant_a) == 0


async def _stored_before_the_limit(
    client: httpx.AsyncClient, pool: db.Pool, payload: str, result: str | None = None
) -> str:
    r = await client.post("/v1/jobs", json={"type": "echo", "data": {"n": 1}}, headers=key())
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    await pool.execute(
        "UPDATE jobs SET payload = $2::text::jsonb, result = $3::text::jsonb WHERE id = $1",
        JobId(uuid.UUID(job_id)), payload, result,
    )
    return str(job_id)


async def test_every_read_answers_for_deep_rows_stored_before_the_limit(
    client_a: httpx.AsyncClient, admin: httpx.AsyncClient, api_pool: db.Pool
) -> None:
    plain = await client_a.post(
        "/v1/jobs", json={"type": "echo", "data": {"fine": True}}, headers=key()
    )
    deep = {
        300: await _stored_before_the_limit(client_a, api_pool, raw_nested(300)),
        # Past what Python's json module decodes: the driver's decoder used
        # to raise RecursionError for the whole statement.
        2000: await _stored_before_the_limit(client_a, api_pool, raw_nested(2000)),
        # A deep result on a shallow payload.
        0: await _stored_before_the_limit(client_a, api_pool, '{"n": 1}', raw_nested(500)),
    }
    for depth, job_id in deep.items():
        got = await client_a.get(f"/v1/jobs/{job_id}")
        assert got.status_code == 200, (depth, got.text)
        body = got.json()
        field = "result" if depth == 0 else "data"
        assert body[field] is None
        assert set(body["omitted"]) == {field}
        assert "levels deep" in body["omitted"][field]
        assert body["status"] == "queued"
        assert (await admin.get(f"/v1/jobs/{job_id}")).status_code == 200

    for reader in (client_a, admin):
        listed = await reader.get("/v1/jobs", params={"page_size": 1000})
        assert listed.status_code == 200, listed.text
        by_id = {j["id"]: j for j in listed.json()["jobs"]}
        assert set(deep.values()) <= set(by_id)
        assert by_id[plain.json()["id"]]["data"] == {"fine": True}
        assert by_id[plain.json()["id"]]["omitted"] is None

    # Changing such a job answers too (retry and cancel return the job).
    cancelled = await client_a.post(f"/v1/jobs/{deep[300]}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    retried = await client_a.post(f"/v1/jobs/{deep[300]}/retry")
    assert retried.status_code == 200 and retried.json()["omitted"] is not None


async def test_a_replay_of_a_deep_row_answers(
    client_a: httpx.AsyncClient, api_pool: db.Pool
) -> None:
    """The same key resent after the row was stored deep: a replay or a conflict,
    never a 500."""
    headers = key()
    r = await client_a.post("/v1/jobs", json={"type": "echo", "data": {"n": 2}}, headers=headers)
    await api_pool.execute(
        "UPDATE jobs SET payload = $2::text::jsonb WHERE id = $1",
        JobId(uuid.UUID(r.json()["id"])), raw_nested(300),
    )
    again = await client_a.post(
        "/v1/jobs", json={"type": "echo", "data": {"n": 2}}, headers=headers
    )
    assert again.status_code == 200, again.text
    assert set(again.json()["omitted"]) == {"data"}
