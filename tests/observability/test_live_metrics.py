"""/metrics of a real API, worker and reaper while jobs run.

Each metric the issue names moves as it should: submissions count up in the
API, depth rises then falls as the worker drains the queue, a failing job
lands in jobs_completed_total{status="dlq"}; every exposition passes the
promtool-style lint and no label carries a job id or a raw path.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx

from jobqueue import db
from jobqueue.db import leases
from jobqueue.models import WorkerId
from tests.observability import procs
from tests.observability.procs import present, value
from tests.observability.promlint import lint
from tests.support import api as support
from tests.support.procs import Proc
from tests.support.wait import eventually

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def post_job(client: httpx.AsyncClient, **body: object) -> httpx.Response:
    return await client.post("/v1/jobs", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})


def no_unbounded_labels(text: str) -> None:
    for line in text.splitlines():
        if not line.startswith("#"):
            assert not UUID.search(line), f"a job id in a label: {line}"


async def test_api_and_worker_metrics_move_while_jobs_run(
    pool: db.Pool, dsn: str, tmp_path: Path
) -> None:
    tenant = await support.tenant_with_key(pool)
    t = tenant.id
    env = procs.base_env(
        dsn,
        JOBQUEUE_API_JWT_SECRET=support.JWT_SECRET,
        JOBQUEUE_API_DEPTH_REFRESH_SECONDS="0.2",
    )
    api = await procs.start_api(env, tmp_path)
    worker: Proc | None = None
    reaper: Proc | None = None
    try:
        async with support.authed(api.url, tenant) as client:
            normal = [
                await post_job(client, type="sleep", data={"seconds": 1.0}) for _ in range(4)
            ]
            high = await post_job(client, type="echo", priority="high")
            doomed = await post_job(client, type="obs-fail", max_attempts=1)
            assert all(r.status_code == 201 for r in [*normal, high, doomed])
            job_id = high.json()["id"]
            assert (await client.get(f"/v1/jobs/{job_id}")).status_code == 200
            assert (await client.get("/v1/jobs/not-a-uuid")).status_code == 422
            assert (await client.get("/no/such/route")).status_code == 404

            # Submissions count up, by priority; requests by route template.
            text, s = await procs.scrape(api)
            assert value(s, "jobs_submitted_total", tenant_id=t, priority="normal") == 5
            assert value(s, "jobs_submitted_total", tenant_id=t, priority="high") == 1
            ok = {"method": "POST", "endpoint": "/v1/jobs", "status": "201"}
            assert value(s, "api_requests_total", **ok) == 6
            get = {"method": "GET", "endpoint": "/v1/jobs/{job_id}"}
            assert value(s, "api_requests_total", **get, status="200") == 1
            assert value(s, "api_requests_total", **get, status="422") == 1
            assert value(s, "api_requests_total", method="GET", endpoint="<unmatched>",
                         status="404") == 1
            assert value(s, "api_request_latency_seconds_count", method="POST",
                         endpoint="/v1/jobs") == 6
            assert value(s, "api_request_latency_seconds_sum", method="POST",
                         endpoint="/v1/jobs") > 0
            assert "/no/such/route" not in text and job_id not in text

            # Depth goes up: the API's periodic refresh sees the six queued jobs.
            async def depth_is(n: float) -> bool:
                _, s = await procs.scrape(api)
                return value(s, "job_queue_depth", tenant_id=t, queue="default") == n

            await eventually(lambda: depth_is(6), what="depth 6")
            _, s = await procs.scrape(api)
            assert value(s, "job_queue_oldest_ready_age_seconds", tenant_id=t,
                         queue="default") > 0
            assert value(s, "job_queue_jobs", tenant_id=t, queue="default",
                         status="queued") == 6

            # A lease nobody renews: the reaper takes it back and says so.
            expiring = await post_job(client, type="echo", queue="expiring", priority="low")
            [held] = await leases.lease(pool, queue="expiring", worker_id=WorkerId("gone"),
                                        limit=1, lease_seconds=0.2)
            assert str(held.job_id) == expiring.json()["id"]
            reaper = await procs.start_reaper(env, tmp_path)

            async def reaped() -> bool:
                _, r = await procs.scrape(reaper)  # type: ignore[union-attr]
                return value(r, "lease_expired_total", tenant_id=t) == 1

            await eventually(reaped, what="one expired lease")

            async def depth_refreshed() -> bool:
                # The depth gauge has its own refresh interval: it may not
                # have run since the rescue.
                _, r = await procs.scrape(reaper)  # type: ignore[union-attr]
                return value(r, "job_queue_depth", tenant_id=t, queue="expiring") == 1

            await eventually(depth_refreshed, what="the requeued job in the depth gauge")
            rtext, r = await procs.scrape(reaper)
            assert value(r, "jobs_completed_total", tenant_id=t, status="dlq") == 0  # requeued
            # Cancelled is an outcome too; the API that cancelled counts it.
            cancel = await client.post(f"/v1/jobs/{held.job_id}/cancel")
            assert cancel.status_code == 200, cancel.text
            _, s = await procs.scrape(api)
            assert value(s, "jobs_completed_total", tenant_id=t, status="cancelled") == 1

            # A worker drains the queue: its own /metrics count what it did.
            worker = await procs.start_worker(
                env, tmp_path, "--concurrency", "3", "--handlers", "tests.observability.jobs"
            )

            async def busy() -> bool:
                _, w = await procs.scrape(worker)  # type: ignore[union-attr]
                return value(w, "worker_busy_slots", queue="default") == 3

            # Four one-second jobs on three slots: all three are busy for a while.
            await eventually(busy, what="three busy slots")

            async def drained() -> bool:
                _, w = await procs.scrape(worker)  # type: ignore[union-attr]
                return (
                    value(w, "jobs_completed_total", tenant_id=t, status="succeeded") == 5
                    and value(w, "jobs_completed_total", tenant_id=t, status="dlq") == 1
                )

            await eventually(drained, what="five succeeded and one dead-lettered")
            wtext, w = await procs.scrape(worker)
            (acquired,) = [v for (n, _), v in w.items() if n == "lease_acquired_total"]
            assert acquired == 6
            assert value(w, "job_duration_seconds_count", tenant_id=t, status="succeeded") == 5
            assert value(w, "job_duration_seconds_count", tenant_id=t, status="dlq") == 1
            assert value(w, "job_duration_seconds_bucket", tenant_id=t, status="succeeded",
                         le="+Inf") == 5
            assert value(w, "worker_slots", queue="default") == 3
            assert present(w, "worker_busy_slots", queue="default")
            assert value(w, "worker_busy_slots", queue="default") == 0
            assert value(w, "jobs_submitted_total", tenant_id=t, priority="normal") == 0

            # Depth comes down: nothing queued; the DLQ keeps the series alive at 0.
            await eventually(lambda: depth_is(0), what="depth back to 0")
            _, s = await procs.scrape(api)
            assert value(s, "job_queue_jobs", tenant_id=t, queue="default", status="dlq") == 1
            assert value(s, "job_queue_oldest_ready_age_seconds", tenant_id=t,
                         queue="default") == 0

            _, s = await procs.scrape(api)
            assert value(s, "jobs_submitted_total", tenant_id=t, priority="low") == 1
            for exposition in (text, wtext, rtext):
                assert lint(exposition) == []
                no_unbounded_labels(exposition)
    finally:
        for proc in (worker, reaper):
            if proc is not None:
                assert proc.stop() == 0, proc.text()
        api.stop()
