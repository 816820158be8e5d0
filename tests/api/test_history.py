"""Jobs moved to history by the reaper, through the API: still read and listed
(pages across the hot table and history), retried, never another tenant's,
and their idempotency keys as docs/design.md ("History") says."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from jobqueue import db
from jobqueue.db import leases
from jobqueue.models import TenantId, WorkerId
from jobqueue.observability import logging as obslog
from jobqueue.reaper.reaper import Reaper
from jobqueue.settings import ReaperSettings

log = obslog.get_logger("test.api.history")


def _queue() -> str:
    return f"h-{uuid.uuid4().hex[:8]}"


async def _submit(client: httpx.AsyncClient, queue: str, key: str | None = None) -> Any:
    key = key or uuid.uuid4().hex
    r = await client.post("/v1/jobs", json={"type": "echo", "data": {"k": key}, "queue": queue},
                          headers={"Idempotency-Key": key})
    assert r.status_code in (200, 201), r.text
    return r


async def _finish(pool: db.Pool, queue: str, n: int, *, dead: bool = False) -> None:
    held = await leases.lease(pool, queue=queue, worker_id=WorkerId("w"), limit=n,
                              lease_seconds=60)
    assert len(held) == n
    if dead:
        for h in held:
            await leases.fail(pool, job_id=h.job_id, token=h.token, error="boom",
                              retry_in_seconds=0, permanent=True)
    else:
        await leases.ack(pool, done=[(h.job_id, h.token, {"ok": True}) for h in held])


async def _archive(pool: db.Pool, tenant_id: TenantId, ids: list[str] | None = None) -> int:
    """Age the tenant's finished jobs (or those of `ids`) two days, then run
    the reaper until it has moved them."""
    await pool.execute(
        "UPDATE jobs SET finished_at = now() - interval '2 days'"
        " WHERE tenant_id = $1 AND finished_at IS NOT NULL"
        "   AND ($2::uuid[] IS NULL OR id = ANY($2))",
        tenant_id, [uuid.UUID(i) for i in ids] if ids is not None else None)
    reaper = Reaper(pool, ReaperSettings(archive_batch=5), log=log)
    while (await reaper.run_once()).full:
        pass
    return reaper.totals["archived"]


async def _in_history(pool: db.Pool, job_id: str) -> bool:
    return bool(await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM jobs_history WHERE id = $1)", uuid.UUID(job_id)))


async def test_an_archived_job_is_read_and_its_key_is_free_again(
    client_a: httpx.AsyncClient, api_pool: db.Pool, tenant_a: Any
) -> None:
    q = _queue()
    first = (await _submit(client_a, q, "order-1")).json()
    await _finish(api_pool, q, 1)
    replay = await _submit(client_a, q, "order-1")
    assert replay.status_code == 200 and replay.json()["id"] == first["id"]  # still hot

    assert await _archive(api_pool, tenant_a.id) >= 1
    assert await _in_history(api_pool, first["id"])
    read = await client_a.get(f"/v1/jobs/{first['id']}")
    assert read.status_code == 200
    assert (read.json()["status"], read.json()["result"]) == ("succeeded", {"ok": True})

    # Past the archive window the key names nothing: a new job.
    again = await _submit(client_a, q, "order-1")
    assert again.status_code == 201 and again.json()["id"] != first["id"]
    assert (await client_a.get(f"/v1/jobs/{first['id']}")).status_code == 200


async def test_pages_run_across_the_hot_table_and_history_in_order(
    client_a: httpx.AsyncClient, api_pool: db.Pool, tenant_a: Any
) -> None:
    q = _queue()
    made = [(await _submit(client_a, q)).json()["id"] for _ in range(23)]
    await _finish(api_pool, q, 23)
    # Every other job moves, so each page interleaves the two tables.
    assert await _archive(api_pool, tenant_a.id, made[::2]) == 12
    assert sum([await _in_history(api_pool, i) for i in made]) == 12

    seen: list[str] = []
    params: dict[str, str] = {"page_size": "5", "queue": q}
    while True:
        page = (await client_a.get("/v1/jobs", params=params)).json()
        assert (page["total"], page["total_exact"]) == (23, True)
        seen += [j["id"] for j in page["jobs"]]
        if page["next"] is None:
            break
        params["after"] = page["next"]
    assert seen == made[::-1]  # newest first, each once
    by_status = (await client_a.get("/v1/jobs", params={"status": "succeeded", "queue": q,
                                                         "page_size": "100"})).json()
    assert [j["id"] for j in by_status["jobs"]] == made[::-1]


async def test_another_tenant_never_sees_or_retries_archived_jobs(
    client_a: httpx.AsyncClient, client_b: httpx.AsyncClient, api_pool: db.Pool,
    tenant_b: Any,
) -> None:
    q = _queue()
    job = (await _submit(client_b, q, "secret")).json()
    await _finish(api_pool, q, 1, dead=True)
    assert await _archive(api_pool, tenant_b.id) >= 1
    assert await _in_history(api_pool, job["id"])
    for method, path in [("GET", f"/v1/jobs/{job['id']}"),
                         ("POST", f"/v1/jobs/{job['id']}/retry"),
                         ("POST", f"/v1/jobs/{job['id']}/cancel")]:
        r = await client_a.request(method, path)
        assert r.status_code == 404, (method, r.text)
    assert (await client_a.get("/v1/jobs", params={"queue": q})).json()["jobs"] == []
    # The same key in A is A's own: a new job, not B's.
    mine = await _submit(client_a, q, "secret")
    assert mine.status_code == 201 and mine.json()["id"] != job["id"]
    assert await _in_history(api_pool, job["id"])  # B's job untouched

    # Its owner retries it out of history, into the queue.
    retried = await client_b.post(f"/v1/jobs/{job['id']}/retry", json={"reset_attempts": True})
    assert retried.status_code == 200, retried.text
    assert (retried.json()["status"], retried.json()["attempt"]) == ("queued", 0)
    assert not await _in_history(api_pool, job["id"])


async def test_retrying_an_archived_job_whose_key_was_reused_is_a_409(
    client_a: httpx.AsyncClient, api_pool: db.Pool, tenant_a: Any
) -> None:
    q = _queue()
    job = (await _submit(client_a, q, "reused")).json()
    await _finish(api_pool, q, 1, dead=True)
    assert await _archive(api_pool, tenant_a.id) >= 1
    newer = (await _submit(client_a, q, "reused")).json()
    r = await client_a.post(f"/v1/jobs/{job['id']}/retry")
    assert r.status_code == 409 and r.json()["error"] == "invalid_transition", r.text
    # Nothing moved: the old job is still in history, the new one queued.
    assert await _in_history(api_pool, job["id"])
    assert (await client_a.get(f"/v1/jobs/{newer['id']}")).json()["status"] == "queued"


async def test_retry_all_matching_takes_the_hot_jobs_then_those_in_history(
    client_a: httpx.AsyncClient, api_pool: db.Pool, tenant_a: Any
) -> None:
    q = _queue()
    made = [(await _submit(client_a, q)).json()["id"] for _ in range(5)]
    await _finish(api_pool, q, 5, dead=True)
    assert await _archive(api_pool, tenant_a.id, made[:3]) == 3  # 3 in history, 2 hot
    # One in history whose key a newer job took: left there, not counted as "more".
    reused = (await client_a.get(f"/v1/jobs/{made[0]}")).json()["idempotency_key"]
    await _submit(client_a, _queue(), reused)

    r = await client_a.post("/v1/jobs/retry", json={"queue": q, "limit": 3})
    assert r.json() == {"changed": 3, "more": True}  # two hot, then one from history
    r = await client_a.post("/v1/jobs/retry", json={"queue": q, "limit": 3})
    assert r.json() == {"changed": 1, "more": False}
    statuses = [(await client_a.get(f"/v1/jobs/{i}")).json()["status"] for i in made]
    assert statuses == ["dlq", "queued", "queued", "queued", "queued"]
    assert [await _in_history(api_pool, i) for i in made] == [True, False, False, False, False]


async def test_days_past_retention_vanish_from_the_api_and_younger_ones_stay(
    client_a: httpx.AsyncClient, api_pool: db.Pool, tenant_a: Any
) -> None:
    q = _queue()
    old = [(await _submit(client_a, q, f"old-{i}-{q}")).json()["id"] for i in range(3)]
    young = [(await _submit(client_a, q)).json()["id"] for _ in range(2)]
    await _finish(api_pool, q, 5)
    await api_pool.execute(
        "UPDATE jobs SET finished_at = now() - make_interval(days => $2) WHERE id = ANY($1)",
        [uuid.UUID(i) for i in old], 5)
    assert await _archive(api_pool, tenant_a.id, young) == 5  # young: 2 days, old: 5
    # A shorter retention: the day five back is past it and dropped whole.
    dropped = await Reaper(api_pool, ReaperSettings(retention_seconds=4 * 86400),
                           log=log).run_once()
    assert dropped.partitions_dropped == 1 and dropped.expired == 0
    for i in old:
        r = await client_a.get(f"/v1/jobs/{i}")
        assert r.status_code == 404 and r.json()["error"] == "not_found", r.text
    for i in young:
        assert (await client_a.get(f"/v1/jobs/{i}")).json()["status"] == "succeeded"
    page = (await client_a.get("/v1/jobs", params={"queue": q})).json()
    assert sorted(j["id"] for j in page["jobs"]) == sorted(young) and page["total"] == 2
    # A dropped job's key names nothing any more: a new job.
    again = await _submit(client_a, q, f"old-0-{q}")
    assert again.status_code == 201 and again.json()["id"] not in old
