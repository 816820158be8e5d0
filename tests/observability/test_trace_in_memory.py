"""Jobs' spans in an in-memory exporter: the API's code path and the worker's,
in this process, joined only through the job row's trace context."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import SecretStr

from jobqueue import db
from jobqueue.api.app import create_app
from jobqueue.db import jobs
from jobqueue.models import JobId, JobStatus, WorkerId
from jobqueue.observability import tracing
from jobqueue.settings import ApiSettings, DatabaseSettings, TracingSettings, WorkerSettings
from jobqueue.worker import handlers
from jobqueue.worker.worker import Worker
from tests import factories
from tests.support import api as support
from tests.support.wait import eventually

WORKER_SPANS = ("acquire_lease", "execute_job", "ack_job")
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exp = InMemorySpanExporter()
    tracing.setup("in-memory", TracingSettings(), exporter=exp)
    yield exp
    tracing.shutdown()


@asynccontextmanager
async def api(
    dsn: str, pool: db.Pool, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[httpx.AsyncClient]:
    monkeypatch.setenv("DATABASE_URL", dsn)
    tenant = await support.tenant_with_key(pool)
    app = create_app(ApiSettings(jwt_secret=SecretStr(support.JWT_SECRET)),
                     DatabaseSettings(listen=False))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c,
    ):
        c.headers.update(support.bearer(await support.token(c, tenant)))
        yield c


async def run_worker_until_done(dsn: str, pool: db.Pool, queue: str, ids: list[str]) -> WorkerId:
    worker = Worker(dsn=dsn, settings=WorkerSettings(queue=queue, poll_seconds=0.1),
                    registry=handlers.load("", registry=handlers.Registry()),
                    database=DatabaseSettings(listen=False))
    running = asyncio.create_task(worker.run())
    try:
        async def succeeded() -> bool:
            got = [await jobs.get(pool, job_id=JobId(uuid.UUID(i))) for i in ids]
            return all(j.status is JobStatus.SUCCEEDED for j in got)

        await eventually(succeeded, what="jobs succeeded")
    finally:
        worker.request_stop()
        assert await asyncio.wait_for(running, 30) == 0
    return worker.worker_id


def spans_by_job(exporter: InMemorySpanExporter) -> dict[str, dict[str, ReadableSpan]]:
    out: dict[str, dict[str, ReadableSpan]] = {}
    for s in exporter.get_finished_spans():
        job_id = (s.attributes or {}).get("job_id")
        if job_id is not None:
            found = out.setdefault(str(job_id), {})
            assert s.name not in found, f"two {s.name} spans for job {job_id}"
            found[s.name] = s
    return out


def assert_worker_spans_under(spans: dict[str, ReadableSpan], root: ReadableSpan) -> None:
    assert root.context is not None
    for name in WORKER_SPANS:
        s = spans[name]
        assert s.context is not None and s.context.trace_id == root.context.trace_id, name
        assert s.parent is not None and s.parent.span_id == root.context.span_id, name


async def test_four_spans_of_one_job_share_one_trace(
    pool: db.Pool, dsn: str, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = f"mem-{uuid.uuid4().hex[:8]}"
    async with api(dsn, pool, monkeypatch) as c:
        r = await c.post("/v1/jobs", json={"type": "echo", "queue": queue},
                         headers={"Idempotency-Key": "one"})
        assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    stored = await jobs.get(pool, job_id=JobId(uuid.UUID(job_id)))
    assert stored.trace_context and "traceparent" in stored.trace_context
    worker_id = await run_worker_until_done(dsn, pool, queue, [job_id])

    spans = spans_by_job(exporter)[job_id]
    assert set(spans) == {"submit_job", *WORKER_SPANS}
    root = spans["submit_job"]
    assert root.context is not None
    assert stored.trace_context["traceparent"].split("-")[1] == f"{root.context.trace_id:032x}"
    assert_worker_spans_under(spans, root)
    for name in WORKER_SPANS:
        attrs = dict(spans[name].attributes or {})
        assert attrs["tenant_id"] == stored.tenant_id and attrs["attempt"] == 1
        assert attrs["worker_id"] == worker_id


async def test_each_job_of_a_batch_gets_a_trace_of_its_own_linked_to_the_batch(
    pool: db.Pool, dsn: str, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = f"mem-{uuid.uuid4().hex[:8]}"
    items = [{"type": "echo", "queue": queue, "idempotency_key": f"k{i}"} for i in range(3)]
    async with api(dsn, pool, monkeypatch) as c:
        r = await c.post("/v1/jobs/batch", json={"jobs": items})
        assert r.status_code == 200, r.text
    ids = [res["job"]["id"] for res in r.json()["results"]]
    await run_worker_until_done(dsn, pool, queue, ids)

    batch = [s for s in exporter.get_finished_spans() if s.name == "submit_batch"]
    assert len(batch) == 1 and batch[0].context is not None
    assert (batch[0].attributes or {})["batch_size"] == 3
    by_job = spans_by_job(exporter)
    traces = set()
    for job_id in ids:
        spans = by_job[job_id]
        assert set(spans) == {"submit_job", *WORKER_SPANS}
        root = spans["submit_job"]
        assert root.parent is None and root.context is not None
        assert [link.context.span_id for link in root.links] == [batch[0].context.span_id]
        assert_worker_spans_under(spans, root)
        traces.add(root.context.trace_id)
    assert len(traces) == 3
    assert batch[0].context.trace_id not in traces


async def test_a_batch_under_a_callers_trace_keeps_its_jobs_in_that_trace(
    pool: db.Pool, dsn: str, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = [{"type": "echo", "idempotency_key": f"k{i}"} for i in range(2)]
    parent = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"
    async with api(dsn, pool, monkeypatch) as c:
        r = await c.post("/v1/jobs/batch", json={"jobs": items}, headers={"traceparent": parent})
        assert r.status_code == 200, r.text
    ids = [res["job"]["id"] for res in r.json()["results"]]

    (batch,) = [s for s in exporter.get_finished_spans() if s.name == "submit_batch"]
    assert batch.context is not None and f"{batch.context.trace_id:032x}" == CALLER_TRACE
    by_job = spans_by_job(exporter)
    for job_id in ids:
        root = by_job[job_id]["submit_job"]
        assert root.context is not None and root.context.trace_id == batch.context.trace_id
        assert root.parent is not None and root.parent.span_id == batch.context.span_id
        stored = await jobs.get(pool, job_id=JobId(uuid.UUID(job_id)))
        assert stored.trace_context is not None
        assert stored.trace_context["traceparent"].split("-")[1] == CALLER_TRACE


async def test_a_job_submitted_without_a_trace_gets_one_from_its_worker(
    pool: db.Pool, dsn: str, exporter: InMemorySpanExporter
) -> None:
    queue = f"mem-{uuid.uuid4().hex[:8]}"
    owner = await factories.tenant(pool)
    job = await factories.submit(pool, owner.id, queue=queue)  # the db layer: no trace context
    assert job.trace_context is None
    await run_worker_until_done(dsn, pool, queue, [str(job.id)])

    spans = spans_by_job(exporter)[str(job.id)]
    assert set(spans) == set(WORKER_SPANS)
    root = spans["acquire_lease"]
    assert root.parent is None and root.context is not None
    for name in ("execute_job", "ack_job"):
        s = spans[name]
        assert s.context is not None and s.context.trace_id == root.context.trace_id, name
        assert s.parent is not None and s.parent.span_id == root.context.span_id, name
