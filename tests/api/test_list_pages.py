"""GET /v1/jobs in pages: `after=` cursors, time ranges, capped totals, and
what a bad cursor or a cursor of another tenant gets."""

from __future__ import annotations

import base64

import httpx

from jobqueue import db
from jobqueue.db import listing
from tests import factories
from tests.support import api as support


async def _pages(client: httpx.AsyncClient, **params: str) -> list[dict[str, object]]:
    seen: list[dict[str, object]] = []
    query = dict(params)
    while True:
        r = await client.get("/v1/jobs", params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        seen += body["jobs"]
        if body["next"] is None:
            return seen
        query["after"] = body["next"]


async def test_cursor_pages_list_every_job_once_in_order(
    client_a: httpx.AsyncClient, api_pool: db.Pool, tenant_a: support.TenantKey
) -> None:
    made = await factories.backlog(api_pool, tenant_a.id, 11, queue="pages")
    seen = await _pages(client_a, queue="pages", page_size="3")
    assert [j["id"] for j in seen] == [str(j.id) for j in reversed(made)]
    first = (await client_a.get("/v1/jobs", params={"queue": "pages", "page_size": "3"})).json()
    assert first["total"] == 11 and first["total_exact"] is True


async def test_a_bad_cursor_is_a_400_with_a_json_message(client_a: httpx.AsyncClient) -> None:
    forged = base64.urlsafe_b64encode(b"v2:1:2").decode()
    for bad in ["nonsense!", forged, "A" * 200, "djE6OnNlcQ"]:
        r = await client_a.get("/v1/jobs", params={"after": bad})
        assert r.status_code == 400, (bad, r.text)
        assert r.json()["error"] == "invalid_cursor"
        assert "cursor" in r.json()["detail"]


async def test_a_cursor_with_a_page_number_or_an_empty_range_is_refused(
    client_a: httpx.AsyncClient, api_pool: db.Pool, tenant_a: support.TenantKey
) -> None:
    await factories.backlog(api_pool, tenant_a.id, 3)
    first = (await client_a.get("/v1/jobs", params={"page_size": "1"})).json()
    both = await client_a.get("/v1/jobs", params={"after": first["next"], "page": "2"})
    assert both.status_code == 422 and both.json()["error"] == "invalid_input"
    empty = await client_a.get("/v1/jobs", params={"created_after": "2030-01-02T00:00:00Z",
                                                    "created_before": "2030-01-01T00:00:00Z"})
    assert empty.status_code == 422 and "created_after" in empty.json()["detail"]
    naive = await client_a.get("/v1/jobs", params={"created_after": "2030-01-01T00:00:00"})
    assert naive.status_code == 422


async def test_time_range_bounds_the_creation_time(
    client_a: httpx.AsyncClient, api_pool: db.Pool, tenant_a: support.TenantKey
) -> None:
    old = await factories.backlog(api_pool, tenant_a.id, 2, queue="range")
    new = await factories.backlog(api_pool, tenant_a.id, 3, queue="range")
    since = new[0].created_at.isoformat()
    got = await _pages(client_a, queue="range", created_after=since)
    assert {j["id"] for j in got} == {str(j.id) for j in new}
    got = await _pages(client_a, queue="range", created_before=since)
    assert {j["id"] for j in got} == {str(j.id) for j in old}


async def test_another_tenants_cursor_reaches_none_of_its_jobs(
    client_a: httpx.AsyncClient,
    client_b: httpx.AsyncClient,
    api_pool: db.Pool,
    tenant_a: support.TenantKey,
    tenant_b: support.TenantKey,
) -> None:
    await factories.backlog(api_pool, tenant_b.id, 4)
    b_page = (await client_b.get("/v1/jobs", params={"page_size": "1"})).json()
    assert b_page["next"] is not None
    from_a = (await client_a.get("/v1/jobs", params={"after": b_page["next"]})).json()
    assert all(j["tenant_id"] == tenant_a.id for j in from_a["jobs"])


async def test_the_total_is_capped_and_says_so(
    client_a: httpx.AsyncClient, api_pool: db.Pool, tenant_a: support.TenantKey
) -> None:
    await factories.backlog(api_pool, tenant_a.id, listing.COUNT_CAP + 5, queue="many")
    body = (await client_a.get("/v1/jobs", params={"queue": "many"})).json()
    assert body["total"] == listing.COUNT_CAP and body["total_exact"] is False
    assert body["next"] is not None


async def test_the_admin_pages_every_tenants_jobs(
    admin: httpx.AsyncClient,
    api_pool: db.Pool,
    tenant_a: support.TenantKey,
    tenant_b: support.TenantKey,
) -> None:
    a = await factories.backlog(api_pool, tenant_a.id, 3, queue="both")
    b = await factories.backlog(api_pool, tenant_b.id, 3, queue="both")
    seen = await _pages(admin, queue="both", page_size="2")
    assert {j["id"] for j in seen} == {str(j.id) for j in a + b}
