"""Job routes through a real server: every status code the issue names."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from jobqueue import db
from jobqueue.db import leases, queues
from jobqueue.models import JobId, WorkerId
from tests.support import api as support
from tests.support.procs import Proc


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def queue() -> str:
    """A queue of the test's own, so leasing picks only the test's jobs."""
    return f"q-{uuid.uuid4().hex[:12]}"


async def to_dlq(pool: db.Pool, q: str) -> JobId:
    held = await leases.lease(pool, queue=q, worker_id=WorkerId("t"), limit=1, lease_seconds=30)
    assert len(held) == 1
    await leases.fail(
        pool,
        job_id=held[0].job_id,
        token=held[0].token,
        error="boom",
        retry_in_seconds=0,
        permanent=True,
    )
    return held[0].job_id


async def test_submit_answers_201_then_200_replay_then_409_for_a_changed_request(
    client_a: httpx.AsyncClient, tenant_a: support.TenantKey
) -> None:
    body = {
        "type": "send_email",
        "data": {"to": "a@example.com"},
        "queue": "mail",
        "priority": "high",
        "max_attempts": 3,
        "timeout_seconds": 60,
        "run_at": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
    }
    headers = {"Idempotency-Key": "order-1"}
    created = await client_a.post("/v1/jobs", json=body, headers=headers)
    assert created.status_code == 201, created.text
    job = created.json()
    assert job["tenant_id"] == tenant_a.id
    assert (job["type"], job["queue"], job["priority"], job["status"]) == (
        "send_email",
        "mail",
        "high",
        "queued",
    )
    assert job["data"] == {"to": "a@example.com"}
    assert (job["max_attempts"], job["timeout_seconds"]) == (3, 60)
    assert "idempotent-replayed" not in created.headers

    replay = await client_a.post("/v1/jobs", json=body, headers=headers)
    assert replay.status_code == 200
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == job["id"]

    changed = await client_a.post("/v1/jobs", json={**body, "data": {}}, headers=headers)
    assert changed.status_code == 409
    assert changed.json()["error"] == "idempotency_conflict"
    assert job["id"] in changed.json()["detail"]


async def test_invalid_bodies_and_a_missing_key_are_422_and_store_nothing(
    client_a: httpx.AsyncClient,
) -> None:
    bad = [
        ({}, key()),
        ({"type": ""}, key()),
        ({"type": "echo", "priority": "urgent"}, key()),
        ({"type": "echo", "max_attempts": 0}, key()),
        ({"type": "echo", "timeout_seconds": 86401}, key()),
        ({"type": "echo", "queue": "has space"}, key()),
        ({"type": "echo", "run_at": "2030-01-01T00:00:00"}, key()),  # no UTC offset
        ({"type": "echo", "unknown": 1}, key()),
        ({"type": "echo"}, {}),  # no Idempotency-Key
        ({"type": "echo"}, {"Idempotency-Key": "with space"}),
    ]
    for body, headers in bad:
        r = await client_a.post("/v1/jobs", json=body, headers=headers)
        assert r.status_code == 422, (body, headers, r.text)
        assert set(r.json()) >= {"error", "detail"}
    for raw in [
        b"{nope",
        b'{"type": "echo", "data": {"x": "\\ud800"}}',  # a lone surrogate: not UTF-8
        b'{"type": "echo", "data": NaN}',
        b'{"type": "echo", "data": "\\u0000"}',  # Postgres text cannot hold NUL
    ]:
        r = await client_a.post(
            "/v1/jobs", content=raw, headers={**key(), "Content-Type": "application/json"}
        )
        assert r.status_code == 422, (raw, r.text)
    assert (await client_a.get("/v1/jobs")).json()["total"] == 0


async def test_a_payload_over_the_limit_is_413(client_a: httpx.AsyncClient) -> None:
    limit = 256 * 1024
    just_fits = {"type": "echo", "data": "x" * (limit - 2)}  # two bytes of quotes
    assert (await client_a.post("/v1/jobs", json=just_fits, headers=key())).status_code == 201
    over = {"type": "echo", "data": "x" * (limit - 1)}
    r = await client_a.post("/v1/jobs", json=over, headers=key())
    assert r.status_code == 413
    assert r.json()["error"] == "payload_too_large"
    huge = await client_a.post(
        "/v1/jobs", json={"type": "echo", "data": "x" * (4 * 1024 * 1024)}, headers=key()
    )
    assert huge.status_code == 413
    assert (await client_a.get("/v1/jobs")).json()["total"] == 1


async def test_fifty_concurrent_submissions_with_one_key_make_exactly_one_job(
    api: Proc, tenant_a: support.TenantKey
) -> None:
    async with support.authed(api.url, tenant_a) as client:
        body = {"type": "echo", "data": {"n": 1}}
        answers = await asyncio.gather(
            *[
                client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "same"})
                for _ in range(50)
            ]
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [200] * 49 + [201]
        assert len({a.json()["id"] for a in answers}) == 1
        assert (await client.get("/v1/jobs")).json()["total"] == 1


async def test_another_tenants_job_is_404_like_a_missing_one(
    client_a: httpx.AsyncClient, client_b: httpx.AsyncClient
) -> None:
    job = (await client_b.post("/v1/jobs", json={"type": "echo"}, headers=key())).json()
    theirs = await client_a.get(f"/v1/jobs/{job['id']}")
    missing = await client_a.get(f"/v1/jobs/{uuid.uuid4()}")
    assert theirs.status_code == missing.status_code == 404
    assert theirs.json()["error"] == missing.json()["error"] == "not_found"
    assert (await client_a.get("/v1/jobs/not-a-uuid")).status_code == 422


async def test_list_filters_pages_in_a_stable_order_with_a_total(
    client_a: httpx.AsyncClient,
) -> None:
    q = queue()
    ids = []
    for i in range(7):
        body = {"type": "report" if i % 2 else "echo", "queue": q, "data": {"i": i}}
        ids.append((await client_a.post("/v1/jobs", json=body, headers=key())).json()["id"])
    await client_a.post("/v1/jobs", json={"type": "echo"}, headers=key())  # another queue

    seen: list[str] = []
    for page in (1, 2, 3):
        r = await client_a.get("/v1/jobs", params={"queue": q, "page": page, "page_size": 3})
        assert r.status_code == 200
        body = r.json()
        assert (body["total"], body["page"], body["page_size"]) == (7, page, 3)
        seen += [j["id"] for j in body["jobs"]]
    assert seen == list(reversed(ids))  # newest first, each job once
    again = await client_a.get("/v1/jobs", params={"queue": q, "page": 1, "page_size": 3})
    assert [j["id"] for j in again.json()["jobs"]] == seen[:3]

    reports = (await client_a.get("/v1/jobs", params={"queue": q, "type": "report"})).json()
    assert reports["total"] == 3
    queued = (await client_a.get("/v1/jobs", params={"status": "queued"})).json()
    assert queued["total"] == 8
    none = (await client_a.get("/v1/jobs", params={"status": "dlq"})).json()
    assert none == {"jobs": [], "total": 0, "total_exact": True, "page": 1, "page_size": 50,
                    "next": None}
    past_end = (await client_a.get("/v1/jobs", params={"queue": q, "page": 9})).json()
    assert past_end["jobs"] == [] and past_end["total"] == 7
    no_filter = await client_a.get("/v1/jobs", params={"status": "", "queue": "", "type": ""})
    assert no_filter.json()["total"] == 8
    for params in ({"status": "lost"}, {"page": 0}, {"page_size": 1001}, {"queue": "a b"}):
        assert (await client_a.get("/v1/jobs", params=params)).status_code == 422


async def test_retry_from_dlq_or_cancelled_and_409_otherwise(
    client_a: httpx.AsyncClient, api_pool: db.Pool
) -> None:
    q = queue()
    job = (await client_a.post("/v1/jobs", json={"type": "echo", "queue": q}, headers=key())).json()
    not_yet = await client_a.post(f"/v1/jobs/{job['id']}/retry", json={})
    assert not_yet.status_code == 409
    assert not_yet.json()["error"] == "invalid_transition"

    await to_dlq(api_pool, q)
    dead = (await client_a.get(f"/v1/jobs/{job['id']}")).json()
    assert (dead["status"], dead["attempt"]) == ("dlq", 1)
    retried = await client_a.post(f"/v1/jobs/{job['id']}/retry", json={"reset_attempts": True})
    assert retried.status_code == 200
    assert (retried.json()["status"], retried.json()["attempt"]) == ("queued", 0)

    cancelled = await client_a.post(f"/v1/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    twice = await client_a.post(f"/v1/jobs/{job['id']}/cancel")
    assert twice.status_code == 409
    again = await client_a.post(f"/v1/jobs/{job['id']}/retry")  # body optional
    assert again.status_code == 200
    assert again.json()["status"] == "queued"
    assert (await client_a.post(f"/v1/jobs/{uuid.uuid4()}/cancel")).status_code == 404
    assert (await client_a.post(f"/v1/jobs/{uuid.uuid4()}/retry")).status_code == 404


async def test_stats_give_depth_by_queue_and_status_and_the_oldest_age(
    client_a: httpx.AsyncClient, api_pool: db.Pool
) -> None:
    q = queue()
    for _ in range(3):
        await client_a.post("/v1/jobs", json={"type": "echo", "queue": q}, headers=key())
    await client_a.post("/v1/jobs", json={"type": "echo", "queue": q}, headers=key())
    await to_dlq(api_pool, q)
    r = await client_a.get("/v1/stats")
    assert r.status_code == 200
    body = r.json()
    depth = {(d["queue"], d["status"]): d["jobs"] for d in body["depth"]}
    assert depth == {(q, "queued"): 3, (q, "dlq"): 1}
    assert body["oldest_queued_age_seconds"] >= 0


async def test_a_full_backlog_answers_429_with_retry_after(
    api: Proc, api_pool: db.Pool
) -> None:
    t = await support.tenant_with_key(api_pool, max_queued=3)
    async with support.authed(api.url, t) as client:
        for _ in range(3):
            assert (
                await client.post("/v1/jobs", json={"type": "echo"}, headers=key())
            ).status_code == 201
        full = await client.post("/v1/jobs", json={"type": "echo"}, headers=key())
        assert full.status_code == 429
        assert full.json()["error"] == "quota_exceeded"
        assert int(full.headers["retry-after"]) >= 1
        batch = await client.post(
            "/v1/jobs/batch", json={"jobs": [{"type": "echo", "idempotency_key": "b"}]}
        )
        assert batch.status_code == 429
        assert (await client.get("/v1/jobs")).json()["total"] == 3


async def test_a_batch_gives_per_item_results_in_one_transaction(
    client_a: httpx.AsyncClient,
) -> None:
    first = await client_a.post(
        "/v1/jobs", json={"type": "echo", "data": {"n": 0}}, headers={"Idempotency-Key": "k0"}
    )
    assert first.status_code == 201
    items = [
        {"type": "echo", "data": {"n": 0}, "idempotency_key": "k0"},  # replay
        {"type": "echo", "data": {"n": 1}, "idempotency_key": "k1"},
        {"type": "echo", "data": {"changed": True}, "idempotency_key": "k0"},  # conflict
        {"type": "echo", "data": {"n": 2}, "idempotency_key": "k2", "priority": "critical"},
    ]
    r = await client_a.post("/v1/jobs/batch", json={"jobs": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["outcome"] for x in body["results"]] == ["replayed", "created", "conflict", "created"]
    assert [x["index"] for x in body["results"]] == [0, 1, 2, 3]
    assert (body["created"], body["replayed"], body["conflicts"]) == (2, 1, 1)
    assert body["results"][0]["job"]["id"] == first.json()["id"]
    assert body["results"][2]["error"]["error"] == "idempotency_conflict"
    assert body["results"][3]["job"]["priority"] == "critical"
    assert (await client_a.get("/v1/jobs")).json()["total"] == 3


async def test_a_batch_stores_any_json_but_null_as_data(client_a: httpx.AsyncClient) -> None:
    values = [[1, 2], [[None, None]], "text", 3, 2.5, True, {"a": [1]}, []]
    items = [{"type": "echo", "data": v, "idempotency_key": f"k{i}"} for i, v in enumerate(values)]
    r = await client_a.post("/v1/jobs/batch", json={"jobs": items})
    assert r.status_code == 200, r.text
    assert [x["job"]["data"] for x in r.json()["results"]] == values
    for v in values:
        single = await client_a.post("/v1/jobs", json={"type": "echo", "data": v}, headers=key())
        assert single.status_code == 201 and single.json()["data"] == v
    null = await client_a.post("/v1/jobs", json={"type": "echo", "data": None}, headers=key())
    assert null.status_code == 422


async def test_a_batch_with_one_bad_item_or_too_many_items_stores_nothing(
    client_a: httpx.AsyncClient,
) -> None:
    good = {"type": "echo", "idempotency_key": "g"}
    bad_item = await client_a.post(
        "/v1/jobs/batch",
        json={"jobs": [good, {"type": "echo", "max_attempts": 0, "idempotency_key": "b"}]},
    )
    assert bad_item.status_code == 422
    no_key = await client_a.post("/v1/jobs/batch", json={"jobs": [{"type": "echo"}]})
    assert no_key.status_code == 422
    too_many = [{"type": "echo", "idempotency_key": f"k{i}"} for i in range(1001)]
    r = await client_a.post("/v1/jobs/batch", json={"jobs": too_many})
    assert r.status_code == 413
    assert (await client_a.get("/v1/jobs")).json()["total"] == 0
    thousand = too_many[:1000]
    r = await client_a.post("/v1/jobs/batch", json={"jobs": thousand})
    assert r.status_code == 200
    assert r.json()["created"] == 1000


async def test_an_omitted_max_attempts_takes_the_queues_default_and_replays(
    client_a: httpx.AsyncClient, api_pool: db.Pool
) -> None:
    q = queue()
    await queues.configure(api_pool, queue=q, default_max_attempts=2)
    omitted = {"type": "echo", "queue": q, "data": {"n": 1}}
    headers = key()
    created = await client_a.post("/v1/jobs", json=omitted, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["max_attempts"] == 2
    null = await client_a.post("/v1/jobs", json={**omitted, "max_attempts": None}, headers=key())
    assert (null.status_code, null.json()["max_attempts"]) == (201, 2)
    explicit = await client_a.post("/v1/jobs", json={**omitted, "max_attempts": 7}, headers=key())
    assert (explicit.status_code, explicit.json()["max_attempts"]) == (201, 7)
    elsewhere = await client_a.post("/v1/jobs", json={"type": "echo", "queue": queue()},
                                    headers=key())
    assert elsewhere.json()["max_attempts"] == 5

    # The default changes; a retry of the first request is still that request.
    await queues.configure(api_pool, queue=q, default_max_attempts=9)
    replay = await client_a.post("/v1/jobs", json=omitted, headers=headers)
    assert replay.status_code == 200 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json()["id"] == created.json()["id"] and replay.json()["max_attempts"] == 2
    changed = await client_a.post("/v1/jobs", json={**omitted, "max_attempts": 2}, headers=headers)
    assert changed.status_code == 409

    batch = await client_a.post(
        "/v1/jobs/batch",
        json={"jobs": [
            {"type": "echo", "queue": q, "idempotency_key": "d1"},
            {"type": "echo", "queue": q, "max_attempts": 3, "idempotency_key": "d2"},
        ]},
    )
    assert batch.status_code == 200, batch.text
    assert [r["job"]["max_attempts"] for r in batch.json()["results"]] == [9, 3]
