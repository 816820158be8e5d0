"""Routes by path: a 405 names every method the path serves; an answer given
before routing (a 413) is still counted under its route template."""

from __future__ import annotations

import re
import uuid

import httpx

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


async def test_a_405_allows_exactly_the_methods_that_are_not_405(
    anon: httpx.AsyncClient,
) -> None:
    spec = (await anon.get("/openapi.json")).json()
    several = 0
    for template in spec["paths"]:
        path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), template)
        answers = {m: await anon.request(m, path) for m in METHODS}
        served = {m for m, r in answers.items() if r.status_code != 405}
        several += len(served - {"HEAD"}) > 1
        for method, r in answers.items():
            if r.status_code == 405:
                assert set(r.headers["allow"].split(", ")) == served, (method, template)
                assert method == "HEAD" or r.json()["error"] == "method_not_allowed"
    assert several >= 2  # GET and POST /v1/jobs, and /v1/jobs/batch (GET is /v1/jobs/{id})


async def test_a_413_answered_before_routing_is_counted_under_its_template(
    client_a: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    label = 'api_requests_total{endpoint="/v1/jobs",method="POST",status="413"}'

    def count(text: str) -> float:
        line = next((x for x in text.splitlines() if x.startswith(label)), None)
        return 0.0 if line is None else float(line.rsplit(" ", 1)[1])

    before = count((await admin.get("/metrics")).text)
    huge = b"x" * (4 * 1024 * 1024)  # over the body limit: refused before routing
    headers = {"Idempotency-Key": "big", "Content-Type": "application/json"}
    r = await client_a.post("/v1/jobs", content=huge, headers=headers)
    assert r.status_code == 413
    assert count((await admin.get("/metrics")).text) == before + 1
