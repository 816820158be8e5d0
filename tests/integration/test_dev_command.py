"""`jobqueue dev` as a user runs it: one command brings up Postgres, API,
worker and reaper, runs demo jobs; a dead child is restarted; Ctrl-C stops
every process and exits 0."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from jobqueue import db
from jobqueue.db import jobs
from jobqueue.models import JobId, JobStatus, NewJob, TenantId
from tests.support.procs import REPO
from tests.support.wait import eventually, eventually_sync

pytestmark = pytest.mark.timeout(180)


class Dev:
    def __init__(self, *args: str, dsn: str | None) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("DATABASE_URL", None)
        env.pop("JOBQUEUE_DATABASE_URL", None)
        if dsn:
            env["DATABASE_URL"] = dsn
        self.lines: list[str] = []
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "jobqueue.cli", "dev", *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=REPO,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def find(self, pattern: str) -> re.Match[str] | None:
        return re.search(pattern, self.text, re.MULTILINE)

    def pids(self) -> dict[str, int]:
        return {m[0]: int(m[1]) for m in re.findall(r"^  (api|worker|reaper)\s+pid (\d+)",
                                                        self.text, re.MULTILINE)}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purposes.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


@contextmanager
def dev(*args: str, dsn: str | None) -> Iterator[Dev]:
    d = Dev(*args, dsn=dsn)
    try:
        yield d
    finally:
        if d.popen.poll() is None:
            d.popen.send_signal(signal.SIGINT)
            try:
                d.popen.wait(40)
            except subprocess.TimeoutExpired:
                d.popen.kill()
        for pid in d.pids().values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_dev_runs_the_demo_on_embedded_postgres_and_exits_0() -> None:
    with dev("--demo-jobs", "4", "--exit-after-demo", "--api-port", "0", dsn=None) as d:
        code = d.popen.wait(150)
        d._reader.join(5)
    assert code == 0, d.text
    assert "starting an embedded PostgreSQL" in d.text
    assert len(re.findall(r"demo job \S+ \((echo|sleep)\) succeeded", d.text)) == 4
    assert "demo done: all succeeded" in d.text
    assert re.search(r"api key:\s+jq_\S{20,}", d.text)
    pids = d.pids()
    assert set(pids) == {"api", "worker", "reaper"}
    assert not any(alive(p) for p in pids.values())
    for name in ("worker", "reaper"):
        assert f"{name} stopped (exit 0)" in d.text


async def test_dev_restarts_a_dead_child_serves_the_api_and_stops_on_ctrl_c(
    dsn: str, pool: db.Pool
) -> None:
    with dev("--demo-jobs", "2", "--api-port", "0", dsn=dsn) as d:
        eventually_sync(lambda: d.find("demo done"), timeout=90, what="the demo")
        assert "demo done: all succeeded" in d.text
        pids = d.pids()
        url = d.find(r"HTTP API on (http://\S+)")
        key = d.find(r"api key:\s+(jq_\S+)")
        assert url and key

        # The printed key and URL work, as the printed curl lines say.
        async with httpx.AsyncClient(base_url=url[1], timeout=10) as http:
            await _until_ready(http)
            tok = await http.post("/auth/token", json={"tenant_id": "demo", "api_key": key[1]})
            assert tok.status_code == 200, tok.text
            headers = {"Authorization": f"Bearer {tok.json()['access_token']}"}
            # The headers the printed curl line sends.
            headers["Idempotency-Key"] = "dev-test-1"
            made = await http.post("/v1/jobs", headers=headers,
                                   json={"type": "sleep", "data": {"seconds": 0.1}})
            assert made.status_code == 201, made.text
            first = JobId(uuid.UUID(made.json()["id"]))
        await _until_succeeded(pool, first)

        # A worker that dies is restarted, and the new one runs jobs.
        os.kill(pids["worker"], signal.SIGKILL)
        eventually_sync(lambda: d.find(r"worker exited with -9; restarting"),
                        timeout=20, what="a restart")
        eventually_sync(lambda: d.text.count("worker starting") >= 2,
                        timeout=30, what="the new worker")
        [again] = await jobs.submit_many(pool, tenant_id=TenantId("demo"),
                                         jobs=[NewJob(type="echo")])
        assert not isinstance(again, Exception)
        await _until_succeeded(pool, again.job.id)

        new_worker = [int(p) for p in re.findall(r"worker pid (\d+)", d.text)]
        d.popen.send_signal(signal.SIGINT)
        began = time.monotonic()
        assert d.popen.wait(40) == 0
        assert time.monotonic() - began < 30
        d._reader.join(5)
    assert "stopping (SIGTERM to every process)" in d.text
    assert "worker stopped (exit 0)" in d.text and "reaper stopped (exit 0)" in d.text
    assert not any(alive(p) for p in [*pids.values(), *new_worker])


async def _until_ready(http: httpx.AsyncClient) -> None:
    async def ready() -> bool:
        return (await http.get("/readyz")).status_code == 200

    await eventually(ready, timeout=30, interval=0.2, what="the API ready",
                     ignore=(httpx.HTTPError,))


async def _until_succeeded(pool: db.Pool, job_id: JobId) -> None:
    async def succeeded() -> bool:
        return (await jobs.get(pool, job_id=job_id)).status is JobStatus.SUCCEEDED

    await eventually(succeeded, timeout=30, interval=0.1, what=f"job {job_id} succeeded")
