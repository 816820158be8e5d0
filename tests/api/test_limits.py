"""Limit routes through a real API process (docs/design.md, invariant 14)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from jobqueue import db
from jobqueue.db import leases, limits
from jobqueue.limits import LimitSpec
from jobqueue.models import WorkerId
from tests import factories

BODY: dict[str, Any] = {"per": "data", "path": ["customer"],
                        "rate": {"count": 5, "period_seconds": 1, "burst": 2},
                        "max_concurrent": 3}


def queue() -> str:
    return f"q-{uuid.uuid4().hex[:10]}"


async def test_admin_puts_replaces_reads_lists_and_deletes_a_limit(
    admin: httpx.AsyncClient,
) -> None:
    q = queue()
    made = await admin.put(f"/v1/admin/queues/{q}/limits/per-customer", json=BODY)
    assert made.status_code == 201, made.text
    got = made.json()
    assert (got["queue"], got["name"], got["per"], got["path"], got["owner"]) == (
        q, "per-customer", "data", ["customer"], None)
    assert (got["rate"], got["max_concurrent"]) == (
        {"count": 5, "period_seconds": 1.0, "burst": 2}, 3)
    again = await admin.put(f"/v1/admin/queues/{q}/limits/per-customer",
                            json={"per": "tenant", "max_concurrent": 1})
    assert again.status_code == 200, again.text
    read = (await admin.get(f"/v1/admin/queues/{q}/limits/per-customer")).json()
    assert (read["per"], read["path"], read["rate"], read["max_concurrent"]) == (
        "tenant", None, None, 1)
    listed = (await admin.get(f"/v1/admin/queues/{q}/limits")).json()["limits"]
    assert [x["name"] for x in listed] == ["per-customer"]
    assert (await admin.delete(f"/v1/admin/queues/{q}/limits/per-customer")).status_code == 204
    assert (await admin.get(f"/v1/admin/queues/{q}/limits/per-customer")).status_code == 404
    assert (await admin.delete(f"/v1/admin/queues/{q}/limits/per-customer")).status_code == 404


async def test_a_tenant_token_may_not_read_or_write_limits(client_a: httpx.AsyncClient) -> None:
    q = queue()
    assert (await client_a.put(f"/v1/admin/queues/{q}/limits/x", json=BODY)).status_code == 403
    assert (await client_a.get(f"/v1/admin/queues/{q}/limits")).status_code == 403
    assert (await client_a.delete(f"/v1/admin/queues/{q}/limits/x")).status_code == 403


@pytest.mark.parametrize(
    ("body", "phrase"),
    [
        ({"per": "queue"}, "rate, a max_concurrent"),
        ({"per": "data", "max_concurrent": 1}, "path"),
        ({"per": "tenant", "path": ["a"], "max_concurrent": 1}, "path"),
        ({"per": "customer", "max_concurrent": 1}, "per"),
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"rate": {"count": 0, "period_seconds": 1}}, "count"),
        ({"rate": {"count": 1, "period_seconds": 0}}, "period_seconds"),
        ({"rate": {"count": 1, "period_seconds": 1, "burst": -1}}, "burst"),
        ({"rate": {"count": 1}}, "period_seconds"),
        ({"rate": {"count": 1, "period_seconds": "1"}}, "period_seconds"),
        ({"per": "data", "path": [], "max_concurrent": 1}, "path"),
        ({"per": "data", "path": [""], "max_concurrent": 1}, "path"),
        ({"max_concurrent": 1, "extra": 1}, "extra"),
    ],
)
async def test_bad_limits_are_422_json_and_store_nothing(
    admin: httpx.AsyncClient, body: dict[str, Any], phrase: str
) -> None:
    q = queue()
    r = await admin.put(f"/v1/admin/queues/{q}/limits/x", json=body)
    assert r.status_code == 422, r.text
    assert phrase in r.text
    assert r.json()["error"] in ("validation_error", "invalid_input")
    assert (await admin.get(f"/v1/admin/queues/{q}/limits")).json()["limits"] == []


@pytest.mark.parametrize("path", ["/v1/admin/queues/Bad Queue/limits/x",
                                  "/v1/admin/queues/q/limits/Not_A_Label"])
async def test_bad_names_in_the_path_are_422(admin: httpx.AsyncClient, path: str) -> None:
    r = await admin.put(path, json={"max_concurrent": 1})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_concurrent", v) for v in (True, "1", 1.0)]
    + [("rate", {"count": v, "period_seconds": 1}) for v in (True, "1", 1.0)]
    + [("rate", {"count": 1, "period_seconds": 1, "burst": v}) for v in (True, "1", 1.0)]
    + [("rate", {"count": 1, "period_seconds": v}) for v in (True, "1")],
)
async def test_typed_fields_of_a_limit_refuse_lax_values(
    admin: httpx.AsyncClient, field: str, value: Any
) -> None:
    q = queue()
    body = {"max_concurrent": 1, field: value}
    r = await admin.put(f"/v1/admin/queues/{q}/limits/x", json=body)
    assert r.status_code == 422, (field, value, r.text)
    assert (await admin.get(f"/v1/admin/queues/{q}/limits")).json()["limits"] == []


async def test_a_limit_declared_by_a_jobqueue_is_read_only_here(
    admin: httpx.AsyncClient, api_pool: db.Pool
) -> None:
    q = queue()
    await limits.put(api_pool, queue=q, spec=LimitSpec(name="owned", max_concurrent=1),
                     owner="ns/jq")
    put = await admin.put(f"/v1/admin/queues/{q}/limits/owned", json={"max_concurrent": 9})
    assert put.status_code == 409 and "JobQueue ns/jq" in put.json()["detail"]
    assert (await admin.delete(f"/v1/admin/queues/{q}/limits/owned")).status_code == 409
    kept = (await admin.get(f"/v1/admin/queues/{q}/limits/owned")).json()
    assert (kept["max_concurrent"], kept["owner"]) == (1, "ns/jq")


async def test_a_limit_put_through_the_api_holds_in_the_lease(
    admin: httpx.AsyncClient, api_pool: db.Pool
) -> None:
    q = queue()
    t = await factories.tenant(api_pool, max_concurrent=1000)
    await factories.backlog(api_pool, t.id, 10, queue=q)
    r = await admin.put(f"/v1/admin/queues/{q}/limits/two", json={"max_concurrent": 2})
    assert r.status_code == 201, r.text
    held = await leases.lease(api_pool, queue=q, worker_id=WorkerId("w"), limit=10,
                              lease_seconds=60)
    assert len(held) == 2
    assert (await admin.delete(f"/v1/admin/queues/{q}/limits/two")).status_code == 204
    rest = await leases.lease(api_pool, queue=q, worker_id=WorkerId("w"), limit=10,
                              lease_seconds=60)
    assert len(rest) == 8
