"""database_errors_total of a real API during a database outage (a cut TCP proxy)."""

from __future__ import annotations

import uuid
from pathlib import Path

from jobqueue import db
from tests.observability import procs
from tests.observability.procs import value
from tests.support import api as support
from tests.support.proxy import TcpProxy
from tests.support.wait import eventually


async def test_an_outage_counts_database_errors_and_recovery_stops_them(
    pool: db.Pool, dsn: str, tmp_path: Path
) -> None:
    proxy = TcpProxy.to(dsn)
    tenant = await support.tenant_with_key(pool)
    env = procs.base_env(proxy.dsn_via(dsn), JOBQUEUE_API_JWT_SECRET=support.JWT_SECRET,
                         JOBQUEUE_API_DEPTH_REFRESH_SECONDS="0.2")
    api = await procs.start_api(env, tmp_path)
    try:
        async with support.authed(api.url, tenant) as client:
            async def submit() -> int:
                r = await client.post("/v1/jobs", json={"type": "echo"},
                                      headers={"Idempotency-Key": str(uuid.uuid4())})
                return r.status_code

            assert await submit() == 201
            _, s = await procs.scrape(api)
            assert value(s, "database_errors_total", component="api") == 0

            proxy.cut()
            assert [await submit() for _ in range(3)] == [503] * 3
            _, s = await procs.scrape(api)
            # Each refused request counts, and so do the depth refresher's ticks.
            assert value(s, "database_errors_total", component="api") >= 3
            assert value(s, "api_requests_total", method="POST", endpoint="/v1/jobs",
                         status="503") == 3

            proxy.restore()

            async def back() -> bool:
                return await submit() == 201

            await eventually(back, what="the API serves again")
            _, before = await procs.scrape(api)
            assert await submit() == 201
            _, after = await procs.scrape(api)
            assert value(after, "database_errors_total", component="api") == value(
                before, "database_errors_total", component="api")
    finally:
        api.stop()
        proxy.stop()
