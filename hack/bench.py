#!/usr/bin/env python3
"""End-to-end benchmark: real worker processes on a real Postgres.

Sections (each a function of `main`, printed as one table):
- submit: batch-submit N no-op jobs (echo) through the db layer;
- drain: N queued jobs run to `succeeded` by 1, then 2 worker processes
  (rate from the first lease to the last ack, on the database clock, so
  process start-up is not counted);
- latency: light load, one job every 10 ms, one idle worker waiting on
  LISTEN/NOTIFY: enqueue-to-start p50/p99 (started_at - created_at, both
  taken by the database).

    python hack/bench.py            # 20,000 jobs
    python hack/bench.py --quick    # CI-sized

Uses an embedded PostgreSQL (fsync off unless --durable); DATABASE_URL
points it at another server instead (it creates its own databases there).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from jobqueue import db
from jobqueue.db import jobs, migrations, stats, tenants
from jobqueue.embedded import EmbeddedPostgres
from jobqueue.models import Job, JobStatus, NewJob, TenantId, TenantQuotas

REPO = Path(__file__).resolve().parents[1]
TENANT = TenantId("bench")


@dataclass
class Row:
    section: str
    what: str
    value: str


@contextmanager
def server(durable: bool) -> Iterator[str]:
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    with EmbeddedPostgres(durable=durable) as pg:
        yield pg.dsn


async def fresh_db(server_dsn: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await db.connect(server_dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    dsn = server_dsn.rsplit("/", 1)[0] + "/" + name
    conn = await db.connect(dsn)
    try:
        await migrations.migrate(conn)
    finally:
        await conn.close()
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    try:
        await tenants.upsert(pool, tenant_id=TENANT,
                             quotas=TenantQuotas(max_concurrent=1_000_000))
    finally:
        await pool.close()
    return dsn


async def drop_db(server_dsn: str, dsn: str) -> None:
    # A drained database left behind keeps autovacuum busy on our two cores
    # and slows the next section down.
    admin = await db.connect(server_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {dsn.rsplit('/', 1)[1]} WITH (FORCE)")
    finally:
        await admin.close()


def start_workers(dsn: str, n: int, concurrency: int) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "DATABASE_URL": dsn, "JOBQUEUE_LOG_LEVEL": "WARNING"}
    return [
        subprocess.Popen(
            [sys.executable, "-m", "jobqueue.cli", "worker", "--concurrency", str(concurrency)],
            env=env, cwd=REPO, stdin=subprocess.DEVNULL,
        )
        for _ in range(n)
    ]


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


async def unfinished(pool: db.Pool) -> int:
    return sum(r.jobs for r in await stats.depth(pool) if not r.status.finished)


async def settle(pool: db.Pool, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 600
    while True:
        if not await unfinished(pool):
            return
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError("jobs did not finish (a worker died or it took > 10 min)")
        await asyncio.sleep(0.1)


async def all_jobs(pool: db.Pool) -> list[Job]:
    out: list[Job] = []
    page = 1
    while True:
        got = await jobs.list_jobs(pool, tenant_id=TENANT, page=page, page_size=1000)
        out += got.jobs
        if len(out) >= got.total or not got.jobs:
            return out
        page += 1


async def submit_section(dsn: str, n: int, batch: int = 1000) -> tuple[float, list[Row]]:
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    try:
        t0 = time.perf_counter()
        for start in range(0, n, batch):
            await jobs.submit_many(pool, tenant_id=TENANT, jobs=[
                NewJob(type="echo", data={"i": i}) for i in range(start, min(n, start + batch))
            ])
        rate = n / (time.perf_counter() - t0)
    finally:
        await pool.close()
    return rate, [Row("submit", f"batch submit {n:,} jobs ({batch}/statement)",
                      f"{rate:,.0f} jobs/s")]


async def drain_section(server_dsn: str, n: int, workers: int, concurrency: int) -> list[Row]:
    dsn = await fresh_db(server_dsn)
    _, rows = await submit_section(dsn, n)
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    procs = start_workers(dsn, workers, concurrency)
    try:
        await settle(pool, procs)
        done = await all_jobs(pool)
    finally:
        stop_workers(procs)
        await pool.close()
        await drop_db(server_dsn, dsn)
    ok = [j for j in done if j.status is JobStatus.SUCCEEDED]
    if len(ok) != n:
        raise RuntimeError(f"only {len(ok)} of {n} jobs succeeded")
    # Database clock: first lease to last ack, so process start-up is not counted.
    first = min(j.leased_at for j in ok if j.leased_at)
    last = max(j.finished_at for j in ok if j.finished_at)
    rate = n / (last - first).total_seconds()
    label = f"{workers} worker process{'es' if workers > 1 else ''} x {concurrency} slots"
    drained = Row("drain", f"{n:,} no-op jobs, {label}", f"{rate:,.0f} jobs/s")
    return [*rows, drained] if workers == 1 else [drained]


async def latency_section(server_dsn: str, n: int, every: float = 0.01) -> list[Row]:
    dsn = await fresh_db(server_dsn)
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    procs = start_workers(dsn, 1, 10)
    try:
        await asyncio.sleep(3)  # the worker is up and LISTENing
        t0 = time.perf_counter()
        for i in range(n):
            await jobs.submit(pool, tenant_id=TENANT, job=NewJob(type="echo", data={"i": i}))
            await asyncio.sleep(max(0.0, t0 + (i + 1) * every - time.perf_counter()))
        await settle(pool, procs)
        found = await all_jobs(pool)
    finally:
        stop_workers(procs)
        await pool.close()
        await drop_db(server_dsn, dsn)
    ms = sorted((j.started_at - j.created_at).total_seconds() * 1000
                for j in found if j.started_at)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    what = f"enqueue-to-start, 1 job / {every * 1000:.0f} ms, {n} jobs, 1 worker (LISTEN)"
    return [Row("latency", what, f"p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms")]


async def http_section(server_dsn: str, quick: bool) -> list[Row]:
    from bench_api import run_http_bench  # hack/bench_api.py, next to this file

    r = await run_http_bench(server_dsn, clients=32, seconds=3 if quick else 10,
                             batches=5 if quick else 20)
    return [
        Row("http", f"single submit, {r.clients} clients, 1 API process",
            f"{r.single_submits_per_second:,.0f} jobs/s, p50 {r.single_p50_ms:.1f} ms,"
            f" p99 {r.single_p99_ms:.1f} ms"),
        Row("http", f"batch submit, {r.batch_size} jobs/request, 1 client",
            f"{r.batch_jobs_per_second:,.0f} jobs/s, p50 {r.batch_p50_ms:.1f} ms,"
            f" p99 {r.batch_p99_ms:.1f} ms"),
    ]


def print_table(rows: list[Row]) -> None:
    w1 = max(len(r.section) for r in rows)
    w2 = max(len(r.what) for r in rows)
    print(f"{'section':<{w1}}  {'measurement':<{w2}}  result")
    for r in rows:
        print(f"{r.section:<{w1}}  {r.what:<{w2}}  {r.value}")


async def main(args: argparse.Namespace) -> None:
    n = 2000 if args.quick else args.jobs
    rows: list[Row] = []
    with server(args.durable) as server_dsn:
        for workers in (1, 2):
            rows += await drain_section(server_dsn, n, workers, args.concurrency)
        rows += await latency_section(server_dsn, 200 if args.quick else 1000)
        rows += await http_section(server_dsn, args.quick)
    mode = "durable" if args.durable else "fsync off"
    where = "DATABASE_URL" if os.environ.get("DATABASE_URL") else f"embedded PostgreSQL, {mode}"
    print(f"\njobqueue end-to-end benchmark ({where}, {os.cpu_count()} CPUs)")
    print_table(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 jobs: a CI-sized run")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50, help="slots per worker")
    parser.add_argument("--durable", action="store_true", help="fsync on (slower, realistic)")
    asyncio.run(main(parser.parse_args()))
