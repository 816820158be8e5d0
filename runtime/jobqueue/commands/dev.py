"""`jobqueue dev`: everything on one machine, one command, Ctrl-C stops it.

Starts an embedded PostgreSQL (or uses DATABASE_URL), migrates, creates the
`demo` tenant with a fresh API key, and runs the API (when this build has
one), a worker and a reaper as child processes it supervises: a child that
dies is restarted with backoff. It then submits a few demo jobs and shows
them finishing. SIGINT/SIGTERM sends SIGTERM to every child, waits for
them, stops the database and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import importlib.util
import json
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from jobqueue import db
from jobqueue.commands.common import migrate, new_key
from jobqueue.db import jobs, tenants
from jobqueue.embedded import EmbeddedPostgres, free_port
from jobqueue.models import JobId, NewJob, TenantId, TenantQuotas
from jobqueue.process.backoff import Backoff
from jobqueue.settings import DatabaseSettings, RuntimeSettings

DEMO_TENANT = TenantId("demo")
STOP_SECONDS = 20.0  # children's SIGTERM budget; the worker gets 5 s of grace


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("dev", help="run everything on one machine")
    p.add_argument("--api-port", type=int,
                   help="0 picks a free port (default: JOBQUEUE_API_PORT, else 8000)")
    p.add_argument("--no-api", action="store_true", help="worker and reaper only")
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--demo-jobs", type=int, default=5, help="jobs to submit once running")
    p.add_argument("--exit-after-demo", action="store_true",
                   help="stop everything once the demo jobs finished (exit 0 if all succeeded)")
    p.set_defaults(func=run)


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    name: str
    args: list[str]
    what: str
    env: dict[str, str]
    proc: asyncio.subprocess.Process | None = None
    restarts: int = 0
    pump: asyncio.Task[None] | None = field(default=None, repr=False)

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jobqueue.cli", *self.args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=self.env,
            # Own process group: Ctrl-C reaches only `dev`, which stops the
            # children in order; they still die if `dev` is killed.
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        self.pump = asyncio.create_task(self._pump(self.proc))

    async def _pump(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            print(f"{self.name:>6} | {line.decode(errors='replace').rstrip()}", flush=True)

    async def stop(self) -> int | None:
        if self.proc is None or self.proc.returncode is not None:
            return None if self.proc is None else self.proc.returncode
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_SECONDS):
                code = await self.proc.wait()
        except TimeoutError:
            self.proc.kill()
            code = await self.proc.wait()
        if self.pump is not None:
            await asyncio.gather(self.pump, return_exceptions=True)
        return code


class Dev:
    def __init__(self, args: argparse.Namespace, api_port: int, dsn: str) -> None:
        self.args = args
        self.api_port = api_port
        self.dsn = dsn
        self.stop = asyncio.Event()
        self.children: list[Child] = []
        self.stopping = False

    def plan(self) -> str | None:
        """The children to run; returns the API URL if there is an API."""
        # Handed on whole, not read: each child reads its own settings from
        # it; only what this command starts is added.
        env = {**os.environ, "DATABASE_URL": self.dsn, "PYTHONUNBUFFERED": "1",
               "JOBQUEUE_LOG_FORMAT": "console"}
        url = None
        if not self.args.no_api and importlib.util.find_spec("jobqueue.commands.api"):
            port = self.api_port or free_port()
            url = f"http://127.0.0.1:{port}"
            api_env = {**env, "JOBQUEUE_API_JWT_SECRET": secrets.token_urlsafe(32)}
            self.children.append(Child("api", ["api", "--host", "127.0.0.1", "--port",
                                               str(port)], f"HTTP API on {url}", api_env))
        self.children.append(Child(
            "worker", ["worker", "--concurrency", str(self.args.concurrency),
                       "--grace-seconds", "5", "--poll-seconds", "0.5"],
            f"runs jobs of queue 'default', {self.args.concurrency} at a time", env))
        self.children.append(Child(
            "reaper", ["reaper", "--interval-seconds", "0.5"],
            "re-queues expired leases, keeps history (elected leader)", env))
        return url

    async def supervise(self, child: Child) -> None:
        """Restart `child` (already started) whenever it dies, with backoff."""
        backoff = Backoff(base=1.0, cap=30.0)
        while True:
            started = time.monotonic()
            assert child.proc is not None
            code = await child.proc.wait()
            if self.stopping:
                return
            if time.monotonic() - started > 60:
                backoff.reset()
            delay = backoff.next()
            child.restarts += 1
            print(f"jobqueue dev: {child.name} exited with {code}; restarting in {delay:.1f} s",
                  flush=True)
            await asyncio.sleep(delay)
            await child.start()

    async def shutdown(self, tasks: list[asyncio.Task[None]]) -> None:
        self.stopping = True
        print("jobqueue dev: stopping (SIGTERM to every process)...", flush=True)
        codes = await asyncio.gather(*(c.stop() for c in self.children))
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for c, code in zip(self.children, codes, strict=True):
            how = f"by {signal.Signals(-code).name}" if code and code < 0 else f"exit {code}"
            print(f"jobqueue dev: {c.name} stopped ({how})", flush=True)


async def _pool(database: DatabaseSettings, dsn: str) -> db.Pool:
    return await db.open_pool(database, dsn=dsn, application_name="jobqueue-dev", min_size=1,
                              max_size=2)


async def setup(database: DatabaseSettings, dsn: str) -> str:
    await migrate(database, dsn=dsn)
    pool = await _pool(database, dsn)
    try:
        await tenants.upsert(pool, tenant_id=DEMO_TENANT, quotas=TenantQuotas())
        return await new_key(pool, DEMO_TENANT)
    finally:
        await pool.close()


async def demo(database: DatabaseSettings, dsn: str, n: int) -> bool:
    """Submit n jobs, print each as it finishes; True if all succeeded."""
    pool = await _pool(database, dsn)
    try:
        batch = [NewJob(type="echo", data={"hello": i}) if i % 2 == 0
                 else NewJob(type="sleep", data={"seconds": round(0.2 * i, 1)})
                 for i in range(n)]
        made = await jobs.submit_many(pool, tenant_id=DEMO_TENANT, jobs=batch)
        pending: dict[JobId, str] = {}
        for r, j in zip(made, batch, strict=True):
            assert not isinstance(r, Exception)
            pending[r.job.id] = j.type
            print(f"jobqueue dev: submitted demo job {r.job.id} ({j.type} {j.data})", flush=True)
        ok = True
        deadline = time.monotonic() + 120
        while pending and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            for jid in list(pending):
                job = await jobs.get(pool, job_id=jid)
                if job.status.finished:
                    took = ((job.finished_at - job.created_at).total_seconds()
                            if job.finished_at else 0.0)
                    print(f"jobqueue dev: demo job {jid} ({pending.pop(jid)}) {job.status} "
                          f"after {took:.2f} s, result {job.result}", flush=True)
                    ok = ok and job.status == "succeeded"
        return ok and not pending
    finally:
        await pool.close()


def banner(dev: Dev, url: str | None, key: str, dsn_shown: str) -> None:
    print(f"\njobqueue dev: PostgreSQL at {dsn_shown}")
    for c in dev.children:
        pid = c.proc.pid if c.proc else "-"
        print(f"  {c.name:<7} pid {pid!s:<8} {c.what}")
    print(f"\ndemo tenant: {DEMO_TENANT}\napi key:     {key}  (shown once)")
    if url:
        login = json.dumps({"tenant_id": DEMO_TENANT, "api_key": key})
        job = json.dumps({"type": "sleep", "data": {"seconds": 1}})
        print(f"\nTry it ({url}/docs for the OpenAPI UI):")
        print(f"  TOKEN=$(curl -s {url}/auth/token -H 'Content-Type: application/json' \\")
        print(f"      -d '{login}' \\")
        print("      | python3 -c 'import json,sys; print(json.load(sys.stdin)"
              "[\"access_token\"])')")
        print(f"  curl -s {url}/v1/jobs -H \"Authorization: Bearer $TOKEN\" \\")
        print("      -H \"Idempotency-Key: $(date +%s%N)\" -H 'Content-Type: application/json' \\")
        print(f"      -d '{job}'")
    print("\nCtrl-C stops everything.\n", flush=True)


async def main(args: argparse.Namespace, settings: RuntimeSettings, dsn: str) -> int:
    key = await setup(settings.database, dsn)
    dev = Dev(args, settings.api.port, dsn)
    url = dev.plan()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, dev.stop.set)
    for c in dev.children:
        await c.start()
    tasks = [asyncio.create_task(dev.supervise(c), name=c.name) for c in dev.children]
    code = 0
    try:
        banner(dev, url, key, dsn.split("@")[-1])
        watch = asyncio.create_task(dev.stop.wait())
        if args.demo_jobs > 0:
            shown = asyncio.create_task(demo(settings.database, dsn, args.demo_jobs))
            await asyncio.wait([shown, watch], return_when=asyncio.FIRST_COMPLETED)
            if shown.done():
                ok = shown.result()
                print(f"jobqueue dev: demo {'done: all succeeded' if ok else 'FAILED'}",
                      flush=True)
                code = 0 if ok else 1
                if args.exit_after_demo:
                    dev.stop.set()
            else:
                shown.cancel()
        await watch
    finally:
        await dev.shutdown(tasks)
    return code


def run(args: argparse.Namespace) -> int:
    settings = RuntimeSettings(api={"port": args.api_port})
    if settings.database.url is not None:
        return asyncio.run(main(args, settings, settings.database.dsn()))
    print("jobqueue dev: starting an embedded PostgreSQL (set DATABASE_URL to use yours)...",
          flush=True)
    with EmbeddedPostgres() as pg:
        return asyncio.run(main(args, settings, pg.dsn))
