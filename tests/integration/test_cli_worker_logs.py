"""Errors and logs never carry payloads: a real `jobqueue worker` process
runs the built-in `sleep` handler on bad input, and neither its log nor the
job's stored errors hold any of the payload (the handler used to put the
whole payload into its error, logged at WARNING)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jobqueue import db
from jobqueue.db import jobs
from jobqueue.models import JobId, JobStatus
from tests import factories
from tests.support.procs import Proc
from tests.support.wait import eventually

MARK = "payload-marker-7f3a"
BAD_SLEEPS: list[Any] = [
    {"seconds": MARK},
    {"seconds": -1, "note": MARK},
    {"seconds": 10**9, MARK: 1},
    {"nap": MARK},
    [MARK],
    MARK,
]


async def test_sleep_errors_and_their_log_lines_hold_no_payload(
    dsn: str, pool: db.Pool, tmp_path: Path
) -> None:
    tenant = await factories.tenant(pool)
    ids = [(await factories.submit(pool, tenant.id, type="sleep", data=d)).id
           for d in BAD_SLEEPS]
    worker = Proc("worker", ["worker", "--poll-seconds", "0.2", "--log-format", "json"],
                  dsn=dsn, logdir=tmp_path).start()
    try:
        async def all_dead() -> bool:
            found = [await jobs.get(pool, job_id=JobId(i)) for i in ids]
            return all(j.status == JobStatus.DLQ for j in found)

        await eventually(all_dead, timeout=60, what="every bad sleep job in the DLQ")
        await eventually(lambda: len([e for e in worker.events() if e.get("event") == "job failed"])
                         >= len(ids), timeout=10,
                         what="a 'job failed' line per job")
    finally:
        worker.stop()
    failed = [e for e in worker.events() if e.get("event") == "job failed"]
    assert {e["job_id"] for e in failed} == {str(i) for i in ids}
    assert all(e["level"] == "warning" and "sleep expects" in e["error"] for e in failed)
    assert MARK not in worker.text()
    for i in ids:
        job = await jobs.get(pool, job_id=JobId(i))
        assert job.last_error is not None and "sleep expects" in job.last_error
        assert MARK not in job.last_error and MARK not in repr(job.errors)
