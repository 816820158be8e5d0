"""The original design's submit body, `{"payload": {"job_type", "data"}, ...}`,
is an alias of ours: the same job, the same idempotency, the same checks."""

from __future__ import annotations

import httpx
import pytest


async def test_the_original_body_submits_the_same_job(client_a: httpx.AsyncClient) -> None:
    original = {"payload": {"job_type": "send_email", "data": {"to": "a@example.com"}},
                "queue": "mail", "priority": "high", "max_attempts": 3}
    r = await client_a.post("/v1/jobs", json=original, headers={"Idempotency-Key": "orig-1"})
    assert r.status_code == 201, r.text
    job = r.json()
    assert (job["type"], job["data"], job["queue"], job["priority"], job["max_attempts"]) == (
        "send_email", {"to": "a@example.com"}, "mail", "high", 3)
    # Our body for the same request is the same request: a replay, not a conflict.
    ours = {"type": "send_email", "data": {"to": "a@example.com"}, "queue": "mail",
            "priority": "high", "max_attempts": 3}
    again = await client_a.post("/v1/jobs", json=ours, headers={"Idempotency-Key": "orig-1"})
    assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == job["id"]


async def test_the_original_body_works_in_a_batch(client_a: httpx.AsyncClient) -> None:
    r = await client_a.post("/v1/jobs/batch", json={"jobs": [
        {"payload": {"job_type": "a", "data": [1]}, "idempotency_key": "ob-1"},
        {"type": "b", "data": [2], "idempotency_key": "ob-2"}]})
    assert r.status_code == 200, r.text
    assert [(x["job"]["type"], x["job"]["data"]) for x in r.json()["results"]] == [
        ("a", [1]), ("b", [2])]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"payload": {"job_type": "x", "data": {}}, "type": "x"}, "either type and data"),
        ({"payload": {"job_type": "x", "extra": 1}}, "job_type"),
        ({"payload": "x"}, "job_type"),
        ({"payload": {"data": {}}}, "type"),
        ({"payload": {"job_type": "bad type!", "data": {}}}, "type"),
        ({"payload": {"job_type": "x", "data": None}}, "data"),
    ],
)
async def test_a_malformed_original_body_is_a_422_that_creates_nothing(
    client_a: httpx.AsyncClient, body: dict[str, object], says: str
) -> None:
    r = await client_a.post("/v1/jobs", json=body, headers={"Idempotency-Key": "bad-orig"})
    assert r.status_code == 422, r.text
    assert says in r.text
    listed = await client_a.get("/v1/jobs")
    assert all(j["idempotency_key"] != "bad-orig" for j in listed.json()["jobs"])
