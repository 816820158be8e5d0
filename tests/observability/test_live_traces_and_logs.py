"""One job through a real API process and a real worker process, traced and logged.

Both processes export spans with the standard OTEL_TRACES_EXPORTER=console
(one JSON span per line on stdout) and log JSON lines on stderr; the tests
read those files after the processes stopped, as a collector would.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from jobqueue import db
from jobqueue.observability import logging as obslog
from tests.conftest import PgServer, create_database, drop_database
from tests.observability import procs
from tests.support import api as support
from tests.support.procs import Proc
from tests.support.wait import eventually

WORKER_SPANS = ("acquire_lease", "execute_job", "ack_job")


@dataclass
class Run:
    api: Proc
    worker: Proc
    tenant: support.TenantKey
    token: str
    job_id: str  # succeeded, after the handler logged carelessly
    failed_id: str  # dead-lettered on its only attempt


async def submit(client: httpx.AsyncClient, **body: object) -> str:
    r = await client.post("/v1/jobs", json=body, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture(scope="module")
async def run(
    pg_server: PgServer, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Run]:
    name = await create_database(pg_server, template_db)
    dsn = pg_server.dsn_for(name)
    log_dir = tmp_path_factory.mktemp("traced")
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    started: list[Proc] = []
    try:
        tenant = await support.tenant_with_key(pool)
        env = procs.base_env(dsn, JOBQUEUE_API_JWT_SECRET=support.JWT_SECRET,
                             **procs.CONSOLE_TRACES)
        api = await procs.start_api(env, log_dir)
        started.append(api)
        worker = await procs.start_worker(env, log_dir, "--handlers", "tests.observability.jobs")
        started.append(worker)
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            token = await support.token(client, tenant)
            client.headers.update(support.bearer(token))
            # The handler logs this key carelessly; redaction must catch it.
            job_id = await submit(client, type="obs-chatty", data={"api_key": tenant.key})
            failed_id = await submit(client, type="obs-fail", max_attempts=1)

            async def finished() -> bool:
                got = [(await client.get(f"/v1/jobs/{i}")).json() for i in (job_id, failed_id)]
                return [j["status"] for j in got] == ["succeeded", "dlq"]

            await eventually(finished, what="both jobs finished")
        # SIGTERM flushes the span processors: every span is on stdout after.
        assert worker.stop() == 0, worker.text()
        api.stop()
        yield Run(api, worker, tenant, token, job_id, failed_id)
    finally:
        for p in started:
            p.stop()
        await pool.close()
        await drop_database(pg_server, name)


def spans_of(proc: Proc, job_id: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for s in proc.spans():
        if s["attributes"].get("job_id") == job_id:
            assert s["name"] not in found, f"two {s['name']} spans for one attempt"
            found[s["name"]] = s
    return found


def test_one_trace_per_job_across_the_api_and_worker_processes(run: Run) -> None:
    api_spans = spans_of(run.api, run.job_id)
    worker_spans = spans_of(run.worker, run.job_id)
    assert set(api_spans) == {"submit_job"}
    # Only ours: frameworks tracing through the global provider (FastAPI's
    # built-in telemetry) would add four spans to every request.
    assert {s["name"] for s in run.api.spans()} == {"submit_job"}
    assert set(worker_spans) == set(WORKER_SPANS)

    submit = api_spans["submit_job"]
    trace_id = submit["context"]["trace_id"]
    assert submit["resource"]["attributes"]["service.name"] == "jobqueue-api"
    assert submit["attributes"]["tenant_id"] == run.tenant.id
    worker_id = None
    for name in WORKER_SPANS:
        s = worker_spans[name]
        assert s["context"]["trace_id"] == trace_id, name
        assert s["parent_id"] == submit["context"]["span_id"], name
        assert s["resource"]["attributes"]["service.name"] == "jobqueue-worker"
        attrs = s["attributes"]
        assert attrs["job_id"] == run.job_id and attrs["tenant_id"] == run.tenant.id
        assert attrs["attempt"] == 1
        worker_id = worker_id or attrs["worker_id"]
        assert attrs["worker_id"] == worker_id
    assert worker_spans["ack_job"]["attributes"]["status"] == "succeeded"
    # In order: leased, then run, then acked.
    start = {n: worker_spans[n]["start_time"] for n in WORKER_SPANS}
    assert start["acquire_lease"] <= start["execute_job"] <= start["ack_job"]

    # Another job is another trace; its failure shows on its execute span.
    failed = spans_of(run.worker, run.failed_id)
    assert failed["execute_job"]["context"]["trace_id"] != trace_id
    assert failed["ack_job"]["attributes"]["status"] == "dlq"


def test_job_log_lines_are_json_carry_the_bound_ids_and_no_secrets(run: Run) -> None:
    lines = run.worker.log_lines()  # fails on any line that is not JSON
    trace_id = spans_of(run.api, run.job_id)["submit_job"]["context"]["trace_id"]
    execute = spans_of(run.worker, run.job_id)["execute_job"]["context"]["span_id"]

    mine = [line for line in lines if line.get("job_id") == run.job_id]
    assert {line["event"] for line in mine} >= {"calling upstream", "using key [redacted]"}
    for line in mine:
        assert line["tenant_id"] == run.tenant.id
        assert line["attempt"] == 1
        assert str(line["worker_id"]).strip()
        assert line["trace_id"] == trace_id.removeprefix("0x")
        assert line["level"] and line["timestamp"] and line["logger"]
    careless = next(line for line in mine if line["event"] == "calling upstream")
    assert careless["span_id"] == execute.removeprefix("0x")
    assert careless["api_key"] == obslog.REDACTED
    assert "data" not in careless  # payloads stay out of info lines

    failed = [line for line in lines if line.get("job_id") == run.failed_id]
    assert any(line["event"] == "job failed" and line["level"] == "warning" for line in failed)
    assert all("trace_id" in line and "worker_id" in line for line in failed)

    api_lines = run.api.log_lines()
    assert api_lines, "the API logged nothing"
    for text in (run.worker.text(), run.api.text()):
        assert run.tenant.key not in text
        assert run.token not in text
        assert support.JWT_SECRET not in text
