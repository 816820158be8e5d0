"""Strict types on the wire: a boolean, a numeric string or a float is never an
integer, a string or a number is never a boolean, and a number is never a time.

The fields come from the OpenAPI document, so a field added later is covered
(or fails the test until it is) without editing the lists here.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from jobqueue import db
from jobqueue.db import leases
from jobqueue.models import WorkerId

NOT_INTEGERS: list[Any] = [True, False, "1", 1.0, "2", 2.0]
NOT_BOOLEANS: list[Any] = [1, 0, "true", "false", "yes", 1.0]
NOT_TIMES: list[Any] = [1_900_000_000, 1.5, "1900000000", True]


def _types(prop: dict[str, Any]) -> set[str]:
    options = prop.get("anyOf", [prop])
    return {o["type"] for o in options if "type" in o}


def typed_fields(spec: dict[str, Any], schema: str) -> dict[str, set[str]]:
    props = spec["components"]["schemas"][schema]["properties"]
    return {name: _types(p) for name, p in props.items() if name != "data"}


def wrong_values(types: set[str], fmt: str | None) -> list[Any]:
    if "integer" in types:
        return NOT_INTEGERS
    if "boolean" in types:
        return NOT_BOOLEANS
    if fmt == "date-time":
        return NOT_TIMES
    return []


def cases(spec: dict[str, Any], schema: str) -> list[tuple[str, Any]]:
    props = spec["components"]["schemas"][schema]["properties"]
    out = []
    for name, types in typed_fields(spec, schema).items():
        fmts = {o.get("format") for o in props[name].get("anyOf", [props[name]])}
        for value in wrong_values(types, "date-time" if "date-time" in fmts else None):
            out.append((name, value))
    return out


async def test_every_typed_field_of_a_submission_refuses_lax_values_and_stores_nothing(
    client_a: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    spec = (await anon.get("/openapi.json")).json()
    single = cases(spec, "JobIn")
    batch = cases(spec, "BatchJobIn")
    # The fields the issue names are among those checked.
    assert {"priority", "max_attempts", "timeout_seconds", "run_at"} <= {n for n, _ in single}
    assert {n for n, _ in single} == {n for n, _ in batch}
    for name, value in single:
        r = await client_a.post(
            "/v1/jobs",
            json={"type": "echo", name: value},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code == 422, (name, value, r.text)
        body = r.json()
        assert body["error"] == "validation_error" and name in body["detail"], body
    for name, value in batch:
        good = {"type": "echo", "idempotency_key": "good"}
        bad = {"type": "echo", "idempotency_key": "bad", name: value}
        r = await client_a.post("/v1/jobs/batch", json={"jobs": [good, bad]})
        assert r.status_code == 422, (name, value, r.text)
        assert name in r.json()["detail"]
    assert (await client_a.get("/v1/jobs")).json()["total"] == 0
    # The strict fields still take what they should.
    r = await client_a.post(
        "/v1/jobs",
        json={"type": "echo", "priority": 3, "max_attempts": 2, "timeout_seconds": 9,
              "run_at": "2030-01-01T00:00:00Z"},
        headers={"Idempotency-Key": "ok"},
    )
    assert r.status_code == 201, r.text
    job = r.json()
    assert (job["priority"], job["max_attempts"], job["timeout_seconds"]) == ("critical", 2, 9)


async def test_retry_refuses_a_non_boolean_reset_and_leaves_the_job_in_the_dlq(
    client_a: httpx.AsyncClient, anon: httpx.AsyncClient, api_pool: db.Pool
) -> None:
    spec = (await anon.get("/openapi.json")).json()
    assert typed_fields(spec, "RetryIn") == {"reset_attempts": {"boolean"}}
    q = f"q-{uuid.uuid4().hex[:12]}"
    job = (
        await client_a.post(
            "/v1/jobs", json={"type": "echo", "queue": q}, headers={"Idempotency-Key": q}
        )
    ).json()
    held = await leases.lease(api_pool, queue=q, worker_id=WorkerId("t"), limit=1,
                              lease_seconds=30)
    await leases.fail(api_pool, job_id=held[0].job_id, token=held[0].token, error="boom",
                      retry_in_seconds=0, permanent=True)
    for value in NOT_BOOLEANS:
        r = await client_a.post(f"/v1/jobs/{job['id']}/retry", json={"reset_attempts": value})
        assert r.status_code == 422, (value, r.text)
    after = (await client_a.get(f"/v1/jobs/{job['id']}")).json()
    assert (after["status"], after["attempt"]) == ("dlq", 1)


async def test_no_other_request_body_has_a_field_left_lax(anon: httpx.AsyncClient) -> None:
    """Each request body is covered above, or has only string fields."""
    spec = (await anon.get("/openapi.json")).json()
    bodies = set()
    for ops in spec["paths"].values():
        for op in ops.values():
            content = op.get("requestBody", {}).get("content", {})
            for media in content.values():
                ref = media["schema"].get("$ref") or next(
                    (o["$ref"] for o in media["schema"].get("anyOf", []) if "$ref" in o), None
                )
                if ref:
                    bodies.add(ref.rsplit("/", 1)[-1])
    # BulkIn and BulkRetryIn: tests/api/test_dashboard_api.py (strict limit and flag);
    # ScheduleIn: the test below; LimitIn: tests/api/test_limits.py.
    assert bodies == {"JobIn", "BatchIn", "RetryIn", "TokenIn", "BulkIn", "BulkRetryIn",
                      "ScheduleIn", "LimitIn"}
    assert typed_fields(spec, "TokenIn") == {"tenant_id": {"string"}, "api_key": {"string"}}
    assert typed_fields(spec, "BatchIn") == {"jobs": {"array"}}


async def test_every_typed_field_of_a_schedule_refuses_lax_values_and_stores_nothing(
    client_a: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    spec = (await anon.get("/openapi.json")).json()
    checked = cases(spec, "ScheduleIn")
    assert {"priority", "max_attempts"} <= {n for n, _ in checked}
    good = {"cron": "0 3 * * *", "type": "echo"}
    for field, value in checked:
        name = f"s-{uuid.uuid4().hex[:10]}"
        r = await client_a.put(f"/v1/schedules/{name}", json={**good, field: value})
        assert r.status_code == 422, (field, value, r.text)
        assert field in r.json()["detail"]
        assert (await client_a.get(f"/v1/schedules/{name}")).status_code == 404
    ok = await client_a.put(f"/v1/schedules/s-{uuid.uuid4().hex[:10]}",
                            json={**good, "priority": 2, "max_attempts": 4})
    assert ok.status_code == 201, ok.text
    assert (ok.json()["priority"], ok.json()["max_attempts"]) == ("high", 4)
