"""SIGKILL of a real `jobqueue api` process in the middle of a batch submit,
over HTTP on 127.0.0.1: the batch is stored wholly or not at all, and the
same request sent again (same idempotency keys) to a new API process
completes it exactly once (replays for what was stored, nothing twice).

The kill lands at different points of one request: while its body is still
on the wire, while its INSERT runs in Postgres (seen in pg_stat_activity),
and at fixed delays after the body was sent. The counts are printed on one
line, `api kill summary: ...`.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx
import pytest

from jobqueue import db
from jobqueue.db import queries
from jobqueue.models import TenantId
from tests.support.api import bearer, start_api, tenant_with_key, token
from tests.support.procs import Proc
from tests.support.wait import eventually

pytestmark = pytest.mark.timeout(180)

BATCH = 2000
# Where in the request the API dies: mid-body, mid-INSERT, or N s after the body.
KILLS: list[str | float] = ["body", "insert", 0.0, 0.2, 0.5, 1.0]

SUBMIT_MANY = queries.load("jobs")["submit_many"]
API_BACKENDS = "SELECT pid, state, query FROM pg_stat_activity WHERE application_name = "\
    "'jobqueue-api' AND pid <> pg_backend_pid()"


def request_bytes(api: Proc, access: str, body: bytes) -> tuple[bytes, bytes]:
    host = api.url.removeprefix("http://")
    head = (f"POST /v1/jobs/batch HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Bearer {access}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head, body


async def batch_insert_running(admin: db.Executor) -> int | None:
    """The backend pid running the batch's INSERT, if one is right now."""
    for r in await admin.fetch(API_BACKENDS):
        # pg_stat_activity keeps only the first track_activity_query_size
        # bytes (1 kB) of a statement: compare its start.
        if r["state"] == "active" and r["query"][:500] == SUBMIT_MANY[:500]:
            return int(r["pid"])
    return None


async def stored(admin: db.Executor, tenant: TenantId, prefix: str) -> int:
    return int(await admin.fetchval(
        "SELECT count(*) FROM jobs WHERE tenant_id = $1 AND idempotency_key LIKE $2",
        tenant, prefix + "%"))


async def kill_mid_batch(
    api: Proc, access: str, body: bytes, when: str | float, admin: db.Executor
) -> None:
    host, port = api.url.removeprefix("http://").split(":")
    head, payload = request_bytes(api, access, body)
    _reader, writer = await asyncio.open_connection(host, int(port))
    try:
        if when == "body":
            writer.write(head + payload[: len(payload) // 2])
            await writer.drain()
            await asyncio.sleep(0.2)  # the API is reading the rest, which never comes
        else:
            writer.write(head + payload)
            await writer.drain()
            if when == "insert":
                await eventually(lambda: batch_insert_running(admin), timeout=20,
                                 what="the batch's INSERT to run",
                                 interval=0.001)
            else:
                assert isinstance(when, float)
                await asyncio.sleep(when)
        await asyncio.to_thread(api.kill)
    finally:
        writer.close()
    # A statement already running finishes (it commits or rolls back) and
    # its backend exits; only then is the outcome settled.
    await eventually(lambda: _no_api_backends(admin),
                     timeout=30, what="the dead API's backends to go")


async def _no_api_backends(admin: db.Executor) -> bool:
    return not await admin.fetch(API_BACKENDS)


async def test_a_batch_cut_by_sigkill_is_all_or_nothing_and_a_retry_completes_it(
    dsn: str, pool: db.Pool, tmp_path: Path
) -> None:
    tenant = await tenant_with_key(pool, "api-kill")
    admin = await db.connect(dsn, application_name="chaos-test")
    outcomes: dict[str, int] = {"wholly": 0, "none": 0, "partial": 0}
    api = await start_api(dsn, tmp_path, api_batch_max=BATCH)
    began = time.monotonic()
    try:
        async with httpx.AsyncClient(base_url=api.url) as c:
            access = await token(c, tenant)  # signed with the shared secret: outlives the API
        for n, when in enumerate(KILLS):
            prefix = f"kill{n}-"
            items = [{"type": "noop", "data": {"n": n, "i": i},
                      "idempotency_key": f"{prefix}{i}"} for i in range(BATCH)]
            body = json.dumps({"jobs": items}).encode()
            await kill_mid_batch(api, access, body, when, admin)
            before = await stored(admin, tenant.id, prefix)
            assert before in (0, BATCH), f"kill at {when!r}: {before} of {BATCH} jobs stored"
            outcomes["wholly" if before == BATCH else "none"] += 1

            api = await start_api(dsn, tmp_path, api_batch_max=BATCH)
            async with httpx.AsyncClient(base_url=api.url, timeout=60) as c:
                r = await c.post("/v1/jobs/batch", content=body, headers={
                    **bearer(access), "Content-Type": "application/json"})
            assert r.status_code == 200, r.text
            out = r.json()
            assert out["conflicts"] == 0, out["conflicts"]
            if before == BATCH:
                assert (out["created"], out["replayed"]) == (0, BATCH), (when, out["created"])
            else:
                assert (out["created"], out["replayed"]) == (BATCH, 0), (when, out["replayed"])
            assert await stored(admin, tenant.id, prefix) == BATCH
            # Nothing else, nothing twice (counted exactly: a listing's total is capped).
            every = await admin.fetchval(
                "SELECT count(*) FROM jobs WHERE tenant_id = $1", tenant.id)
            assert every == BATCH * (n + 1)
            by_key = {res["job"]["idempotency_key"]: res["job"]["id"] for res in out["results"]}
            assert sorted(by_key) == sorted(f"{prefix}{i}" for i in range(BATCH))
    finally:
        api.stop()
        await admin.close()
    elapsed = time.monotonic() - began
    print(f"\napi kill summary: batches={len(KILLS)} jobs_per_batch={BATCH} "
          f"api_kills={len(KILLS)} wholly_stored={outcomes['wholly']} "
          f"not_stored={outcomes['none']} partial={outcomes['partial']} "
          f"retries_completed={len(KILLS)} in {elapsed:.1f}s")
    # Both outcomes were met: mid-body nothing is stored, mid-INSERT all is.
    assert outcomes["none"] >= 1 and outcomes["wholly"] >= 1, outcomes
