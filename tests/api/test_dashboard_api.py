"""The routes behind the web UI: overview, admin views, bulk retry and
cancel, and the static files with their security headers."""

from __future__ import annotations

import httpx

from jobqueue import db
from jobqueue.db import dashboard, queues
from tests import factories
from tests.support import api as support
from tests.support.procs import Proc


async def test_the_overview_counts_only_the_callers_jobs(
    client_a: httpx.AsyncClient,
    client_b: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    api_pool: db.Pool,
    tenant_a: support.TenantKey,
    tenant_b: support.TenantKey,
) -> None:
    await factories.backlog(api_pool, tenant_a.id, 3, queue="ov-a")
    await factories.dead_lettered(api_pool, tenant_a.id, 2, queue="ov-dead")
    await factories.backlog(api_pool, tenant_b.id, 4, queue="ov-b")
    await dashboard.report_replicas(api_pool, queue="ov-a", replicas=3, ready_replicas=2,
                                    max_replicas=5)
    mine = (await client_a.get("/v1/overview", params={"minutes": 5})).json()
    by_queue = {q["queue"]: q for q in mine["queues"]}
    assert set(by_queue) == {"ov-a", "ov-dead"}
    assert by_queue["ov-a"]["jobs"] == {"queued": 3, "leased": 0, "running": 0, "dlq": 0}
    assert by_queue["ov-a"]["oldest_queued_age_seconds"] >= 0
    assert (by_queue["ov-a"]["replicas"], by_queue["ov-a"]["ready_replicas"]) == (3, 2)
    dead = by_queue["ov-dead"]
    assert dead["jobs"]["dlq"] == 2 and dead["replicas"] is None
    assert len(dead["throughput"]) == 5
    assert sum(p["dlq"] for p in dead["throughput"]) == 2
    assert dead["throughput"][-1]["dlq"] == 2  # finished this minute
    theirs = (await client_b.get("/v1/overview")).json()
    assert {q["queue"] for q in theirs["queues"]} == {"ov-b"}
    everyone = (await admin.get("/v1/overview")).json()
    assert {"ov-a", "ov-b", "ov-dead"} <= {q["queue"] for q in everyone["queues"]}
    bad = await client_a.get("/v1/overview", params={"minutes": 0})
    assert bad.status_code == 422


async def test_busy_workers_are_the_lease_holders_of_the_callers_jobs(
    client_a: httpx.AsyncClient, api_pool: db.Pool, tenant_a: support.TenantKey
) -> None:
    await factories.backlog(api_pool, tenant_a.id, 2, queue="ov-busy")
    from jobqueue.db import leases
    from jobqueue.models import WorkerId

    await leases.lease(api_pool, queue="ov-busy", worker_id=WorkerId("w1"), limit=1,
                       lease_seconds=60)
    await leases.lease(api_pool, queue="ov-busy", worker_id=WorkerId("w2"), limit=1,
                       lease_seconds=60)
    got = (await client_a.get("/v1/overview")).json()
    busy = {q["queue"]: q for q in got["queues"]}["ov-busy"]
    assert busy["busy_workers"] == 2
    assert busy["jobs"]["queued"] == 0


async def test_admin_views_need_the_admin_credential(
    client_a: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    for path in ("/v1/admin/tenants", "/v1/admin/queues"):
        assert (await client_a.get(path)).status_code == 403
        assert (await anon.get(path)).status_code == 401


async def test_admin_sees_tenants_with_usage_and_budget_and_queues_with_defaults(
    admin: httpx.AsyncClient, api: Proc, api_pool: db.Pool
) -> None:
    slow = await support.tenant_with_key(api_pool, rate_per_minute=60, rate_burst=10)
    await factories.backlog(api_pool, slow.id, 2, queue="adm-q")
    await queues.configure(api_pool, queue="adm-q", default_max_attempts=7)
    before = {t["id"]: t for t in (await admin.get("/v1/admin/tenants")).json()["tenants"]}
    assert before[slow.id]["usage"] == {"queued": 2, "active": 0, "dlq": 0}
    assert before[slow.id]["rate_tokens"] == 10
    async with support.authed(api.url, slow) as client:  # the token costs one request
        await client.get("/v1/stats")
        await client.get("/v1/stats")
    after = {t["id"]: t for t in (await admin.get("/v1/admin/tenants")).json()["tenants"]}
    # 3 requests at 1 a second: 7 left, or 8 if a second passed meanwhile.
    assert after[slow.id]["rate_tokens"] in (7, 8)
    found = {q["name"]: q for q in (await admin.get("/v1/admin/queues")).json()["queues"]}
    assert found["adm-q"]["default_max_attempts"] == 7 and found["adm-q"]["max_attempts"] == 7


async def test_bulk_retry_reaches_only_the_callers_matching_dead_jobs(
    client_a: httpx.AsyncClient,
    client_b: httpx.AsyncClient,
    api_pool: db.Pool,
    tenant_a: support.TenantKey,
    tenant_b: support.TenantKey,
) -> None:
    mine = await factories.dead_lettered(api_pool, tenant_a.id, 3, queue="bulk-r", type="x")
    other_type = await factories.dead_lettered(api_pool, tenant_a.id, 1, queue="bulk-r", type="y")
    theirs = await factories.dead_lettered(api_pool, tenant_b.id, 2, queue="bulk-r", type="x")
    r = await client_a.post("/v1/jobs/retry", json={"status": "dlq", "queue": "bulk-r",
                                                     "type": "x", "limit": 2})
    assert r.status_code == 200, r.text
    assert r.json() == {"changed": 2, "more": True}
    r = await client_a.post("/v1/jobs/retry", json={"queue": "bulk-r", "type": "x",
                                                     "reset_attempts": True})
    assert r.json() == {"changed": 1, "more": False}
    for j in mine:
        got = (await client_a.get(f"/v1/jobs/{j.id}")).json()
        assert got["status"] == "queued"
    assert (await client_a.get(f"/v1/jobs/{other_type[0].id}")).json()["status"] == "dlq"
    for j in theirs:
        assert (await client_b.get(f"/v1/jobs/{j.id}")).json()["status"] == "dlq"


async def test_bulk_cancel_is_bounded_and_scoped(
    client_a: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    api_pool: db.Pool,
    tenant_a: support.TenantKey,
    tenant_b: support.TenantKey,
) -> None:
    await factories.backlog(api_pool, tenant_a.id, 5, queue="bulk-c")
    theirs = await factories.backlog(api_pool, tenant_b.id, 2, queue="bulk-c")
    r = await client_a.post("/v1/jobs/cancel", json={"queue": "bulk-c", "limit": 3})
    assert r.json() == {"changed": 3, "more": True}
    r = await client_a.post("/v1/jobs/cancel", json={"queue": "bulk-c"})
    assert r.json() == {"changed": 2, "more": False}
    left = (await admin.get("/v1/jobs", params={"queue": "bulk-c", "status": "queued"})).json()
    assert {j["id"] for j in left["jobs"]} == {str(j.id) for j in theirs}
    # The admin's call spans tenants.
    r = await admin.post("/v1/jobs/cancel", json={"queue": "bulk-c"})
    assert r.json() == {"changed": 2, "more": False}


async def test_bulk_bad_input_is_refused_and_changes_nothing(
    client_a: httpx.AsyncClient, api_pool: db.Pool, tenant_a: support.TenantKey
) -> None:
    dead = await factories.dead_lettered(api_pool, tenant_a.id, 1, queue="bulk-bad")
    for path, body in [
        ("/v1/jobs/retry", {"status": "queued"}),
        ("/v1/jobs/cancel", {"status": "dlq"}),
        ("/v1/jobs/retry", {"limit": 0}),
        ("/v1/jobs/retry", {"limit": 1001}),
        ("/v1/jobs/retry", {"queue": "bulk-bad", "tenant_id": "someone-else"}),
        ("/v1/jobs/retry", {"created_after": "yesterday"}),
    ]:
        r = await client_a.post(path, json=body)
        assert r.status_code == 422, (path, body, r.text)
        assert r.json()["error"] in ("validation_error", "invalid_input")
    assert (await client_a.get(f"/v1/jobs/{dead[0].id}")).json()["status"] == "dlq"


async def test_the_ui_is_served_with_a_strict_content_security_policy(
    anon: httpx.AsyncClient,
) -> None:
    r = await anon.get("/ui", follow_redirects=False)
    assert r.status_code == 308 and r.headers["location"] == "/ui/"
    page = await anon.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/ui/app.js">' in page.text
    js = await anon.get("/ui/app.js")
    assert js.headers["content-type"].startswith("text/javascript")
    assert "content-security-policy" in js.headers
    for missing in ("/ui/nope.js", "/ui/..%2Fapp.py", "/ui/%2e%2e"):
        r = await anon.get(missing)
        assert r.status_code == 404, missing
        assert r.json()["error"] == "not_found"


async def test_no_ui_script_writes_html(anon: httpx.AsyncClient) -> None:
    """Tenant data reaches the page only as text: no module may parse HTML."""
    from jobqueue.api.routes import ui

    for name in ui.FILES:
        if name.endswith(".js"):
            text = (await anon.get(f"/ui/{name}")).text
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                         "eval(", "new Function"):
                assert sink not in text, (name, sink)


async def test_a_job_shows_its_error_history_and_trace_id(
    client_a: httpx.AsyncClient, api_pool: db.Pool, tenant_a: support.TenantKey
) -> None:
    traced = "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    dead = await factories.dead_lettered(api_pool, tenant_a.id, 1, queue="hist",
                                         trace_context={"traceparent": traced})
    got = (await client_a.get(f"/v1/jobs/{dead[0].id}")).json()
    assert got["trace_id"] == "ab" * 16
    assert [(e["attempt"], e["error"]) for e in got["errors"]] == [(1, "boom")]


async def test_bulk_numbers_and_flags_are_strict_on_the_wire(
    client_a: httpx.AsyncClient, api_pool: db.Pool, tenant_a: support.TenantKey
) -> None:
    dead = await factories.dead_lettered(api_pool, tenant_a.id, 1, queue="bulk-strict")
    for body in [
        {"queue": "bulk-strict", "limit": "5"},
        {"queue": "bulk-strict", "limit": 5.0},
        {"queue": "bulk-strict", "limit": True},
        {"queue": "bulk-strict", "reset_attempts": "true"},
        {"queue": "bulk-strict", "reset_attempts": 1},
        {"queue": "bulk-strict", "created_after": 1700000000},
    ]:
        r = await client_a.post("/v1/jobs/retry", json=body)
        assert r.status_code == 422, (body, r.text)
    assert (await client_a.get(f"/v1/jobs/{dead[0].id}")).json()["status"] == "dlq"
