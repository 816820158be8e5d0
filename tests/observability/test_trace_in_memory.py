"""One job's four spans in an in-memory exporter: the API's code path and the
worker's, in this process, joined only through the job row's trace context."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr

from jobqueue import db
from jobqueue.api.app import create_app
from jobqueue.db import jobs
from jobqueue.models import JobId, JobStatus
from jobqueue.observability import tracing
from jobqueue.settings import ApiSettings, DatabaseSettings, WorkerSettings
from jobqueue.worker import handlers
from jobqueue.worker.worker import Worker
from tests.api import support
from tests.observability.procs import eventually


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exp = InMemorySpanExporter()
    tracing.setup("in-memory", exporter=exp)
    yield exp
    tracing.shutdown()


async def test_four_spans_of_one_job_share_one_trace(
    pool: db.Pool, dsn: str, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", dsn)
    database = DatabaseSettings(listen=False)
    tenant = await support.tenant_with_key(pool)
    queue = f"mem-{uuid.uuid4().hex[:8]}"

    app = create_app(ApiSettings(jwt_secret=SecretStr(support.JWT_SECRET)), database)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c,
    ):
        c.headers.update(support.bearer(await support.token(c, tenant)))
        r = await c.post("/v1/jobs", json={"type": "echo", "queue": queue},
                         headers={"Idempotency-Key": "one"})
        assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    stored = await jobs.get(pool, job_id=JobId(uuid.UUID(job_id)))
    assert stored.trace_context and "traceparent" in stored.trace_context

    worker = Worker(dsn=dsn, settings=WorkerSettings(queue=queue, poll_seconds=0.1),
                    registry=handlers.load("", registry=handlers.Registry()), database=database)
    running = asyncio.create_task(worker.run())
    try:
        async def succeeded() -> bool:
            job = await jobs.get(pool, job_id=JobId(uuid.UUID(job_id)))
            return job.status is JobStatus.SUCCEEDED

        await eventually(succeeded, what="job succeeded")
    finally:
        worker.request_stop()
        assert await asyncio.wait_for(running, 30) == 0

    spans: dict[str, ReadableSpan] = {}
    for s in exporter.get_finished_spans():
        if (s.attributes or {}).get("job_id") == job_id:
            spans[s.name] = s
    assert set(spans) == {"submit_job", "acquire_lease", "execute_job", "ack_job"}
    root = spans["submit_job"]
    assert root.context is not None
    assert stored.trace_context["traceparent"].split("-")[1] == f"{root.context.trace_id:032x}"
    for name in ("acquire_lease", "execute_job", "ack_job"):
        s = spans[name]
        assert s.context is not None and s.context.trace_id == root.context.trace_id
        assert s.parent is not None and s.parent.span_id == root.context.span_id
        attrs = dict(s.attributes or {})
        assert attrs["tenant_id"] == tenant.id and attrs["attempt"] == 1
        assert attrs["worker_id"] == worker.worker_id
