#!/usr/bin/env python3
"""End-to-end benchmark: real worker processes on a real Postgres.

Sections (each a function of `main`, printed as one table):
- submit: batch-submit N no-op jobs (echo) through the db layer;
- drain: N queued jobs run to `succeeded` by 1, then 2 worker processes
  (rate from the first lease to the last ack, on the database clock, so
  process start-up is not counted), and the workers' CPU time per 1,000
  jobs (user + system, read from /proc between the moment the backlog is
  released and the last ack: it does not depend on what else the machine
  runs, where jobs/s does);
- latency: light load, one job every 10 ms, one idle worker waiting on
  LISTEN/NOTIFY: enqueue-to-start p50/p99 (started_at - created_at, both
  taken by the database);
- list (only with --only list): GET /v1/jobs first and deep pages at
  1,000,000 and 10,000,000 rows of history (hack/bench_list.py);
- backlog (only with --only backlog): lease latency with 1,000 and with
  1,000,000 jobs queued (hack/bench_backlog.py);
- tenants (only with --only tenants): a drain over 100 tenants, each under
  a max_concurrent quota (hack/bench_backlog.py).

    python hack/bench.py                          # 20,000 jobs
    python hack/bench.py --quick                  # CI-sized
    python hack/bench.py --only drain --runs 3    # medians of 3 drains
    python hack/bench.py --compare pgqueuer --durable --runs 3 [--json] [--before TREE]
                                                  # side by side (hack/bench_compare.py)

Uses an embedded PostgreSQL (fsync off unless --durable); DATABASE_URL
points it at another server instead (it creates its own databases there).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import benchdb  # hack/benchdb.py, next to this file
import otlp_sink  # hack/otlp_sink.py
from jobqueue import db
from jobqueue.db import jobs, tenants
from jobqueue.models import Job, JobStatus, NewJob, TenantId, TenantQuotas

SECTIONS = ("drain", "latency", "http")
# Run only when named in --only: seeding millions of rows takes minutes.
OPT_IN = ("list", "backlog", "tenants")

REPO = Path(__file__).resolve().parents[1]
TENANT = TenantId("bench")


@dataclass
class Row:
    section: str
    what: str
    value: str


async def bench_db(server_dsn: str) -> str:
    """A fresh database whose bench tenant has no concurrency cap."""
    dsn = await benchdb.fresh_db(server_dsn)
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    try:
        await tenants.upsert(pool, tenant_id=TENANT,
                             quotas=TenantQuotas(max_concurrent=1_000_000))
    finally:
        await pool.close()
    return dsn


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


async def workers_ready(pool: db.Pool, n: int, procs: list[subprocess.Popen[bytes]]) -> None:
    """Wait until `n` worker processes have connected (start-up CPU excluded)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError("a worker exited during start-up")
        found = await pool.fetchval(
            "SELECT count(DISTINCT application_name) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name LIKE 'jobqueue-worker %'"
        )
        if found >= n:
            await asyncio.sleep(0.5)  # past the first (empty) lease and LISTEN
            return
        await asyncio.sleep(0.1)
    raise RuntimeError("workers did not connect within 60 s")


async def unfinished(pool: db.Pool) -> bool:
    # Not stats.depth: it counts every queued job, so polling it cost the
    # server ~100 ms a call at 200,000 queued (5 ms at 20,000), and the
    # drain's server CPU per job grew with the backlog for the harness's
    # sake. Each EXISTS matches a partial index's predicate (jobs_ready,
    # jobs_active_expiry) and stops at the first unfinished job.
    return bool(await pool.fetchval(
        "SELECT EXISTS (SELECT 1 FROM jobs WHERE status = 'queued')"
        " OR EXISTS (SELECT 1 FROM jobs WHERE status IN ('leased', 'running'))"))


async def settle(pool: db.Pool, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 600
    while True:
        if not await unfinished(pool):
            return
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError("jobs did not finish (a worker died or it took > 10 min)")
        await asyncio.sleep(0.5)


async def all_jobs(pool: db.Pool) -> list[Job]:
    out: list[Job] = []
    page = 1
    while True:
        got = await jobs.list_jobs(pool, tenant_id=TENANT, page=page, page_size=1000)
        out += got.jobs
        # A page short of full is the last: `total` is capped (at 1,000), not the count.
        if len(got.jobs) < 1000:
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


@dataclass
class Drain:
    jobs_per_second: float
    worker_ms_per_1000: float
    server_ms_per_1000: float | None


def per_1000(seconds: float | None, n: int) -> float | None:
    return None if seconds is None else seconds * 1000 / n * 1000


async def drain_once(server_dsn: str, n: int, workers: int, concurrency: int) -> Drain:
    dsn = await bench_db(server_dsn)
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    # The backlog waits behind a disabled tenant until the workers are up,
    # so the CPU time they use from then on is the drain's alone.
    await tenants.update(pool, tenant_id=TENANT, enabled=False)
    await submit_section(dsn, n)
    procs = start_workers(dsn, workers, concurrency)
    pids = [p.pid for p in procs]
    try:
        postmaster = await benchdb.find_postmaster(dsn)
        await workers_ready(pool, workers, procs)
        cpu0, server0 = benchdb.cpu_seconds(*pids), benchdb.server_cpu_seconds(postmaster)
        await tenants.update(pool, tenant_id=TENANT, enabled=True)
        await settle(pool, procs)
        cpu = benchdb.cpu_seconds(*pids) - cpu0
        server1 = benchdb.server_cpu_seconds(postmaster)
        done = await all_jobs(pool)
    finally:
        stop_workers(procs)
        await pool.close()
        await benchdb.drop_db(server_dsn, dsn)
    ok = [j for j in done if j.status is JobStatus.SUCCEEDED]
    if len(ok) != n:
        raise RuntimeError(f"only {len(ok)} of {n} jobs succeeded")
    # Database clock: first lease to last ack, so process start-up is not counted.
    first = min(j.leased_at for j in ok if j.leased_at)
    last = max(j.finished_at for j in ok if j.finished_at)
    server = None if server0 is None or server1 is None else server1 - server0
    return Drain(n / (last - first).total_seconds(), cpu * 1e6 / n, per_1000(server, n))


def _ms(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "n/a (server not local)"
    runs = f" ({', '.join(f'{v:.0f}' for v in known)})" if len(known) > 1 else ""
    return f"{statistics.median(known):,.0f} ms{runs}"


async def drain_section(
    server_dsn: str, n: int, workers: int, concurrency: int, runs: int
) -> list[Row]:
    got = [await drain_once(server_dsn, n, workers, concurrency) for _ in range(runs)]
    rate = statistics.median(d.jobs_per_second for d in got)
    label = f"{workers} worker process{'es' if workers > 1 else ''} x {concurrency} slots"
    of = f" (median of {runs}: " + ", ".join(f"{d.jobs_per_second:,.0f}" for d in got) + ")"
    return [
        Row("drain", f"{n:,} no-op jobs, {label}",
            f"{rate:,.0f} jobs/s" + (of if runs > 1 else "")),
        Row("drain", "  worker CPU per 1,000 jobs", _ms([d.worker_ms_per_1000 for d in got])),
        Row("drain", "  PostgreSQL CPU per 1,000 jobs", _ms([d.server_ms_per_1000 for d in got])),
    ]


async def latency_section(server_dsn: str, n: int, every: float = 0.01) -> list[Row]:
    dsn = await bench_db(server_dsn)
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    procs = start_workers(dsn, 1, 10)
    try:
        postmaster = await benchdb.find_postmaster(dsn)
        await workers_ready(pool, 1, procs)
        await asyncio.sleep(1)  # LISTENing
        cpu0 = benchdb.cpu_seconds(procs[0].pid)
        server0 = benchdb.server_cpu_seconds(postmaster)
        t0 = time.perf_counter()
        for i in range(n):
            await jobs.submit(pool, tenant_id=TENANT, job=NewJob(type="echo", data={"i": i}))
            await asyncio.sleep(max(0.0, t0 + (i + 1) * every - time.perf_counter()))
        await settle(pool, procs)
        cpu = benchdb.cpu_seconds(procs[0].pid) - cpu0
        server1 = benchdb.server_cpu_seconds(postmaster)
        found = await all_jobs(pool)
    finally:
        stop_workers(procs)
        await pool.close()
        await benchdb.drop_db(server_dsn, dsn)
    ms = sorted((j.started_at - j.created_at).total_seconds() * 1000
                for j in found if j.started_at)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    what = f"enqueue-to-start, 1 job / {every * 1000:.0f} ms, {n} jobs, 1 worker (LISTEN)"
    # The server's share includes the submissions; the worker's is its own.
    server = None if server0 is None or server1 is None else server1 - server0
    return [
        Row("latency", what, f"p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms"),
        Row("latency", "  worker CPU per 1,000 jobs", _ms([cpu * 1e6 / n])),
        Row("latency", "  PostgreSQL CPU per 1,000 jobs (incl. submits)",
            _ms([per_1000(server, n)])),
    ]


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


async def list_section(server_dsn: str, quick: bool) -> list[Row]:
    import bench_list  # hack/bench_list.py, next to this file

    out: list[Row] = []
    for n in (100_000,) if quick else (1_000_000, 10_000_000):
        seeded, found = await bench_list.run(server_dsn, n, 50 if quick else 200)
        out += [Row("list", what, value) for what, value in bench_list.report(n, seeded, found)]
    return out


def print_table(rows: list[Row]) -> None:
    w1 = max(len(r.section) for r in rows)
    w2 = max(len(r.what) for r in rows)
    print(f"{'section':<{w1}}  {'measurement':<{w2}}  result")
    for r in rows:
        print(f"{r.section:<{w1}}  {r.what:<{w2}}  {r.value}")


async def main(args: argparse.Namespace) -> None:
    n = 2000 if args.quick else args.jobs
    if args.compare:
        import bench_compare  # hack/bench_compare.py, next to this file

        scenarios = args.only.split(",") if args.only else list(bench_compare.SCENARIOS)
        if set(scenarios) - set(bench_compare.SCENARIOS):
            raise SystemExit(f"--only with --compare: one of {','.join(bench_compare.SCENARIOS)}")
        with benchdb.server(args.durable) as server_dsn:
            await bench_compare.compare(server_dsn, n=n, rounds=args.runs, only=scenarios,
                                        before=args.before, as_json=args.json)
        return
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    if only - set(SECTIONS) - set(OPT_IN):
        raise SystemExit(f"--only: unknown section(s) {sorted(only - set(SECTIONS))}")
    with contextlib.ExitStack() as stack:
        if args.traced is not None:
            sink = stack.enter_context(otlp_sink.running())
            # Every process the benchmark starts inherits these.
            os.environ.update(
                OTEL_TRACES_EXPORTER="otlp",
                OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=sink.endpoint,
                OTEL_TRACES_SAMPLER="parentbased_traceidratio",
                OTEL_TRACES_SAMPLER_ARG=str(args.traced),
            )
        server_dsn = stack.enter_context(benchdb.server(args.durable))
        rows = await sections(server_dsn, args, n, only)
        if args.traced is not None:
            rows.append(Row("tracing", f"OTLP export, sampled {args.traced:.0%}",
                            f"{sink.requests:,} requests, {sink.bytes / 1e6:,.1f} MB received"))
    mode = "durable" if args.durable else "fsync off"
    where = "DATABASE_URL" if os.environ.get("DATABASE_URL") else f"embedded PostgreSQL, {mode}"
    print(f"\njobqueue end-to-end benchmark ({where}, {os.cpu_count()} CPUs)")
    print_table(rows)


async def sections(server_dsn: str, args: argparse.Namespace, n: int, only: set[str]) -> list[Row]:
    rows: list[Row] = []
    if "drain" in only:
        dsn = await bench_db(server_dsn)
        try:
            _, rows = await submit_section(dsn, n)
        finally:
            await benchdb.drop_db(server_dsn, dsn)
        for workers in (1, 2):
            rows += await drain_section(server_dsn, n, workers, args.concurrency, args.runs)
    if "latency" in only:
        rows += await latency_section(server_dsn, 200 if args.quick else 1000)
    if "http" in only:
        rows += await http_section(server_dsn, args.quick)
    if "list" in only:
        rows += await list_section(server_dsn, args.quick)
    if "backlog" in only or "tenants" in only:
        import bench_backlog  # hack/bench_backlog.py, next to this file

        if "backlog" in only:
            rows += await bench_backlog.backlog_section(server_dsn, args.quick)
        if "tenants" in only:
            rows += await bench_backlog.tenants_section(server_dsn, n, 100)
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 jobs: a CI-sized run")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50, help="slots per worker")
    parser.add_argument("--durable", action="store_true", help="fsync on (slower, realistic)")
    parser.add_argument("--runs", type=int, default=1, help="drains per size; medians printed")
    parser.add_argument("--only", help=f"comma-separated sections of {','.join(SECTIONS)}, or "
                                       f"{','.join(OPT_IN)} (opt-in: see the docstring)")
    parser.add_argument("--compare", choices=["pgqueuer"],
                        help="side by side with pgqueuer (pip install -e '.[bench]')")
    parser.add_argument("--before", type=Path, metavar="TREE",
                        help="with --compare: also the jobqueue of another source tree")
    parser.add_argument("--json", action="store_true", help="with --compare: JSON output")
    parser.add_argument("--traced", type=float, metavar="RATIO",
                        help="trace every process, sampling RATIO (0-1) of jobs, exported over "
                             "OTLP/HTTP to a local sink")
    asyncio.run(main(parser.parse_args()))
