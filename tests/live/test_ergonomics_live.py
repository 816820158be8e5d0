"""The ergonomic features across real processes: a `jobqueue api` process, a
`jobqueue worker` process running tests/live/handlers.py, real Postgres,
and the Python client over HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from jobqueue import AsyncClient, Client, db
from jobqueue.models import JobStatus
from tests.conftest import PgServer, create_database, drop_database
from tests.support import api as support
from tests.support.procs import Proc
from tests.support.wait import eventually

pytestmark = pytest.mark.timeout(120)

QUEUE = "live"


@dataclass
class Stack:
    dsn: str
    pool: db.Pool
    api: Proc
    worker: Proc

    async def tenant(self) -> support.TenantKey:
        return await support.tenant_with_key(self.pool)

    def client(self, t: support.TenantKey) -> AsyncClient:
        return AsyncClient(self.api.url, tenant_id=t.id, api_key=t.key)


@pytest.fixture(scope="module")
async def stack(
    pg_server: PgServer, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    name = await create_database(pg_server, template_db)
    dsn = pg_server.dsn_for(name)
    logs = tmp_path_factory.mktemp("live")
    pool = await db.create_pool(dsn, min_size=1, max_size=4)
    worker = Proc(
        "worker", ["worker", "--queue", QUEUE, "--concurrency", "8", "--lease-seconds", "60",
                   "--handlers", "tests.live.handlers"],
        dsn=dsn, logdir=logs, env={"JOBQUEUE_WORKER_PROGRESS_SECONDS": "0.1"},
    ).start()
    try:
        async with support.running_api(dsn, logs, api_tenant_cache_seconds=0) as api:
            yield Stack(dsn, pool, api, worker)
    finally:
        worker.stop()
        await pool.close()
        await drop_database(pg_server, name)


@pytest.fixture
def marks(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path


async def test_progress_is_streamed_on_the_websocket_and_stored(stack: Stack) -> None:
    t = await stack.tenant()
    async with stack.client(t) as c:
        token = await support.token(c._http, t)
        url = stack.api.url.replace("http://", "ws://") + f"/ws/jobs?token={token}"
        async with connect(url) as ws:
            assert json.loads(await ws.recv()) == {"type": "ready"}
            job = await c.submit("progress-steps", {"steps": 3, "pause": 0.5}, queue=QUEUE)
            events: list[dict[str, Any]] = []
            while not (events and events[-1].get("status") == "succeeded"):
                event = json.loads(await asyncio.wait_for(ws.recv(), 20))
                if event.get("job_id") == str(job.id):
                    events.append(event)
        done = await c.get(job.id)
    progress = [e for e in events if e["type"] == "progress"]
    assert [round(e["progress"], 3) for e in progress] == [0.333, 0.667, 1.0]
    assert [e["note"] for e in progress] == [f"step {i} of 3" for i in (1, 2, 3)]
    assert {e["status"] for e in progress} == {"running"}
    assert all(e["tenant_id"] == t.id and e["queue"] == QUEUE for e in progress)
    assert (done.progress, done.progress_note) == (1.0, "step 3 of 3")


async def test_wait_returns_the_final_job_with_its_error_history(stack: Stack) -> None:
    t = await stack.tenant()
    with Client(stack.api.url, tenant_id=t.id, api_key=t.key) as sync:
        job = sync.submit("fail-then-succeed", {"failures": 2}, queue=QUEUE)
        done = await asyncio.to_thread(sync.wait, job.id, 30)
    assert done.status is JobStatus.SUCCEEDED and done.result == "finally"
    assert done.attempt == 3
    assert [(e.attempt, e.error.splitlines()[0]) for e in done.errors] == [
        (1, "RuntimeError: failure number 1"), (2, "RuntimeError: failure number 2")]
    assert done.errors[0].at <= done.errors[1].at <= done.finished_at  # type: ignore[operator]
    async with stack.client(t) as c:
        again = await c.wait(job.id, timeout=5)  # already finished: at once
        assert again.status is JobStatus.SUCCEEDED and again.errors == done.errors
        parked = await c.submit("progress-steps", {"steps": 1}, queue="no-worker-here")
        with pytest.raises(TimeoutError):
            await c.wait(parked.id, timeout=1.0)
    with (
        Client(stack.api.url, tenant_id=t.id, api_key=t.key) as sync,
        pytest.raises(TimeoutError),
    ):
        await asyncio.to_thread(sync.wait, parked.id, 1.0)


async def test_cancel_reaches_async_and_sync_handlers(stack: Stack, marks: Path) -> None:
    t = await stack.tenant()
    async with stack.client(t) as c:
        a = await c.submit("cancel-async", {"dir": str(marks)}, queue=QUEUE, max_attempts=5)
        s = await c.submit("cancel-sync", {"dir": str(marks)}, queue=QUEUE, max_attempts=5)
        await eventually(lambda: (marks / "async-started").exists()
                    and (marks / "sync-started").exists(), timeout=20,
                    what="both handlers running")
        await c.cancel(a.id)
        await c.cancel(s.id)
        # The lease is 60 s (a heartbeat every 20): only the NOTIFY is this fast.
        await eventually(lambda: (marks / "async-cancelled").exists(), timeout=5,
                         what="CancelledError")
        await eventually(lambda: (marks / "sync-saw-cancelled").exists(), timeout=5,
                         what="ctx.cancelled")
        await asyncio.sleep(1.0)  # room for a wrongful retry or ack
        for jid in (a.id, s.id):
            job = await c.get(jid)
            assert job.status is JobStatus.CANCELLED and job.attempt == 1
            assert job.result is None and job.errors == []
    stopped = [e for e in stack.worker.events()
               if e["event"] == "job cancelled; stopping its handler"]
    assert {e["job_id"] for e in stopped} >= {str(a.id), str(s.id)}
    assert not [e for e in stack.worker.events()
                if e["event"] == "lease lost" and e.get("job_id") in (str(a.id), str(s.id))]


async def test_snooze_runs_the_job_again_later_on_the_same_attempt(
    stack: Stack, marks: Path
) -> None:
    t = await stack.tenant()
    async with stack.client(t) as c:
        job = await c.submit("snooze-once", {"dir": str(marks), "seconds": 1.0}, queue=QUEUE,
                             max_attempts=1)
        done = await c.wait(job.id, timeout=30)
    assert done.status is JobStatus.SUCCEEDED and done.result == {"attempt": 1}
    assert done.finished_at is not None and done.started_at is not None
    assert (done.finished_at - done.created_at).total_seconds() >= 1.0
    snoozed = [e for e in stack.worker.events()
               if e["event"] == "job snoozed" and e["job_id"] == str(job.id)]
    assert len(snoozed) == 1 and snoozed[0]["seconds"] == 1.0


async def test_every_finished_job_logs_one_line_with_its_duration(
    stack: Stack, tmp_path: Path
) -> None:
    t = await stack.tenant()
    quiet = Proc("quiet", ["worker", "--queue", "quiet", "--handlers", "tests.live.handlers"],
                 dsn=stack.dsn, logdir=tmp_path,
                 env={"JOBQUEUE_WORKER_LOG_FINISHED_SAMPLE": "0"}).start()
    try:
        async with stack.client(t) as c:
            loud = [await c.submit("progress-steps", {"steps": 1, "pause": 0}, queue=QUEUE)
                    for _ in range(3)]
            hushed = [await c.submit("progress-steps", {"steps": 1, "pause": 0}, queue="quiet")
                      for _ in range(3)]
            for j in loud + hushed:
                assert (await c.wait(j.id, timeout=30)).status is JobStatus.SUCCEEDED
    finally:
        quiet.stop()
    lines = [e for e in stack.worker.events() if e["event"] == "job succeeded"]
    by_job = {e["job_id"]: e for e in lines}
    for j in loud:
        line = by_job[str(j.id)]
        assert line["level"] == "info" and line["type"] == "progress-steps"
        assert 0 <= line["duration_seconds"] < 10 and line["tenant_id"] == t.id
    assert sum(1 for e in lines if e["job_id"] in {str(j.id) for j in loud}) == 3
    assert not [e for e in quiet.events() if e["event"] == "job succeeded"]
