"""The per-tenant rate limit holds across API replicas (it lives in Postgres)."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from pathlib import Path

import httpx

from jobqueue import db
from tests.support import api as support


async def test_sixty_a_minute_with_burst_ten_admits_ten_then_one_a_second_across_two_apis(
    api_dsn: str, logs: Path, api_pool: db.Pool
) -> None:
    t = await support.tenant_with_key(api_pool, rate_per_minute=60, rate_burst=10)
    headers = support.bearer(support.mint(t.id))
    replicas = await asyncio.gather(
        support.start_api(api_dsn, logs), support.start_api(api_dsn, logs)
    )
    attempts: list[tuple[float, int, bool]] = []  # (time since start, replica, admitted)
    refusals: list[httpx.Response] = []
    try:
        async with (
            httpx.AsyncClient(base_url=replicas[0].url, headers=headers) as c0,
            httpx.AsyncClient(base_url=replicas[1].url, headers=headers) as c1,
        ):
            clients = [c0, c1]
            start = time.monotonic()
            while (elapsed := time.monotonic() - start) < 5.5:
                replica = len(attempts) % 2
                r = await clients[replica].get(f"/v1/jobs/{uuid.uuid4()}")
                # Admitted requests get 404: the job does not exist.
                assert r.status_code in (404, 429), r.text
                attempts.append((elapsed, replica, r.status_code == 404))
                if r.status_code == 429:
                    refusals.append(r)
                await asyncio.sleep(0.02)
    finally:
        for server in replicas:
            server.stop()

    admitted = [a for a in attempts if a[2]]
    # GCRA: the burst at once, then one every 60 s / 60 = 1 s, whichever replica asks.
    assert all(a[2] for a in attempts[:10]), attempts[:12]
    assert attempts[10][0] > 1.0 or not attempts[10][2], attempts[:12]
    assert elapsed - 1.5 <= len(admitted) - 10 <= elapsed + 1, (elapsed, admitted)
    gaps = [y[0] - x[0] for x, y in itertools.pairwise(admitted[10:])]
    assert all(0.8 < g < 1.5 for g in gaps), gaps
    assert {replica for _, replica, _ in admitted} == {0, 1}
    body = refusals[0].json()
    assert body["error"] == "rate_limited" and "retry" in body["detail"]
    assert 1 <= int(refusals[0].headers["retry-after"]) <= 2
