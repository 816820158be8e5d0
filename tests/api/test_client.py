"""jobqueue.Client and AsyncClient against a real server."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from jobqueue import AsyncClient, Client, db, errors
from jobqueue.client import RateLimited
from jobqueue.db import queues
from tests.support import api as support
from tests.support.procs import Proc
from tests.support.proxy import TcpProxy


def test_the_package_exports_the_clients() -> None:
    import jobqueue

    assert jobqueue.Client is Client and jobqueue.AsyncClient is AsyncClient


async def test_the_sync_client_covers_every_route(
    api: Proc, tenant_a: support.TenantKey
) -> None:
    def scenario() -> None:
        with Client(api.url, tenant_id=tenant_a.id, api_key=tenant_a.key) as jq:
            job = jq.submit("echo", {"n": 1}, queue="sync", priority="high", idempotency_key="s1")
            assert (job.status, job.priority, job.queue) == ("queued", "high", "sync")
            assert (
                jq.submit("echo", {"n": 1}, queue="sync", priority="high", idempotency_key="s1").id
                == job.id
            )
            with pytest.raises(errors.IdempotencyConflict):
                jq.submit("echo", {"n": 2}, idempotency_key="s1")
            assert jq.get(job.id).id == job.id
            with pytest.raises(errors.JobNotFound):
                jq.get(uuid.uuid4())
            batch = jq.submit_many([{"type": "echo", "data": i} for i in range(3)])
            assert batch.created == 3
            page = jq.list(queue="sync")
            assert page.total == 1 and page.jobs[0].id == job.id
            first = jq.list(page_size=2)
            assert first.total == 4 and first.next is not None
            rest = jq.list(page_size=2, after=first.next)
            assert rest.next is None
            assert {j.id for j in first.jobs + rest.jobs} == {job.id} | {
                r.job.id for r in batch.results if r.job
            }
            assert jq.cancel(job.id).status == "cancelled"
            with pytest.raises(errors.InvalidTransition):
                jq.cancel(job.id)
            assert jq.retry(job.id, reset_attempts=True).status == "queued"
            depth = {(d.queue, d.status): d.jobs for d in jq.stats().depth}
            assert depth == {("sync", "queued"): 1, ("default", "queued"): 3}

    await asyncio.to_thread(scenario)


async def test_the_async_client_submits_reads_and_watches(
    api: Proc, tenant_a: support.TenantKey
) -> None:
    async with AsyncClient(api.url, tenant_id=tenant_a.id, api_key=tenant_a.key) as jq:
        events = jq.watch()
        first = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0.5)  # let the watcher subscribe
        jobs = await asyncio.gather(*[jq.submit("echo", {"i": i}) for i in range(5)])
        assert len({j.id for j in jobs}) == 5
        event = await asyncio.wait_for(first, 10)
        assert event["type"] == "job" and event["tenant_id"] == tenant_a.id
        await events.aclose()
        assert (await jq.get(jobs[0].id)).data == {"i": 0}
        assert (await jq.list()).total == 5


async def test_an_expired_or_refused_token_is_bought_again_once(
    api: Proc, tenant_a: support.TenantKey
) -> None:
    async with AsyncClient(api.url, tenant_id=tenant_a.id, api_key=tenant_a.key) as jq:
        await jq.list()
        jq._core._token = "stale"  # as if the server's secret had rotated
        assert (await jq.list()).total == 0
    async with AsyncClient(api.url, token="forged") as bad:
        with pytest.raises(errors.JobQueueError) as refused:
            await bad.list()
        assert getattr(refused.value, "status", None) == 401


async def test_429_is_retried_after_retry_after_and_raised_when_retries_run_out(
    api: Proc, api_pool: db.Pool
) -> None:
    t = await support.tenant_with_key(api_pool, rate_per_minute=60, rate_burst=2)
    async with AsyncClient(api.url, token=support.mint(t.id)) as jq:
        start = time.monotonic()
        for _ in range(4):
            await jq.list()
        # Two at once, then one a second: the client waited out the 429s.
        assert time.monotonic() - start > 1.5
    async with AsyncClient(api.url, token=support.mint(t.id), max_retries=0) as impatient:
        with pytest.raises(RateLimited) as refused:
            for _ in range(3):
                await impatient.list()
        assert isinstance(refused.value, errors.QuotaExceeded)
        assert refused.value.retry_after >= 1


async def test_503_is_retried_until_the_database_is_back_and_makes_one_job(
    api_dsn: str, api_pool: db.Pool, logs: Path
) -> None:
    proxy = TcpProxy.to(api_dsn)
    t = await support.tenant_with_key(api_pool)
    try:
        async with (
            support.running_api(proxy.dsn_via(api_dsn), logs) as server,
            AsyncClient(server.url, token=support.mint(t.id), max_retries=10) as jq,
        ):
            proxy.cut()
            submitting = asyncio.ensure_future(jq.submit("echo", {"x": 1}))
            await asyncio.sleep(1.5)
            assert not submitting.done()
            proxy.restore()
            job = await asyncio.wait_for(submitting, 30)
            assert job.status == "queued"
            assert (await jq.list()).total == 1
    finally:
        proxy.stop()


async def test_the_clients_leave_max_attempts_to_the_queue_unless_given(
    api: Proc, api_pool: db.Pool, tenant_a: support.TenantKey
) -> None:
    q = f"defaults-{uuid.uuid4().hex[:8]}"
    await queues.configure(api_pool, queue=q, default_max_attempts=3)
    async with AsyncClient(api.url, tenant_id=tenant_a.id, api_key=tenant_a.key) as jq:
        first = await jq.submit("echo", {"n": 1}, queue=q, idempotency_key="c1")
        assert first.max_attempts == 3
        assert (await jq.submit("echo", {"n": 1}, queue=q, idempotency_key="c1")).id == first.id
        assert (await jq.submit("echo", queue=q, max_attempts=8)).max_attempts == 8

    def sync() -> int:
        with Client(api.url, tenant_id=tenant_a.id, api_key=tenant_a.key) as jq:
            return jq.submit("echo", queue=q).max_attempts

    assert await asyncio.to_thread(sync) == 3
