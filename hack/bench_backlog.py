"""Two scenarios of `hack/bench.py` that need a backlog seeded in bulk
(issue 12 keeps both):

- backlog: lease latency with 1,000 and with 1,000,000 jobs queued: one
  worker's lease of 10 jobs, then their ack, repeated; p50/p99 of the lease
  call (client wall clock, round trip included) and the server's CPU per
  lease. A lease must not cost more because the queue is deep.
- tenants: a drain of N jobs spread over 100 tenants, each capped at
  `max_concurrent` 2 (200 slots in all, what two workers of 100 offer), so
  every lease serves many tenants under their quotas: jobs/s, and worker
  and PostgreSQL CPU per 1,000 jobs.

The backlog is written by one INSERT ... SELECT over generate_series on the
server (a million rows in seconds, not a million submits); the jobs are
what a submit makes (queued, default queue, priority normal).
"""

from __future__ import annotations

import statistics
import time
import uuid

import bench  # hack/bench.py, next to this file
import benchdb  # hack/benchdb.py, next to this file
from jobqueue import db
from jobqueue.db import leases, tenants
from jobqueue.models import TenantId, TenantQuotas, WorkerId

# $1 jobs of tenant `$2 || (g % $3)`, or of tenant $2 alone when $3 is 0.
SEED = """
INSERT INTO jobs (tenant_id, queue, type, payload, priority, max_attempts, timeout_seconds)
SELECT CASE WHEN $3 = 0 THEN $2 ELSE $2 || '-' || (g % $3) END,
       'default', 'echo', jsonb_build_object('i', g), 1, 5, 300
  FROM generate_series(1, $1::integer) g
"""
TENANTS = 100
PER_TENANT = 2


async def _seeded(server_dsn: str, n: int, spread: int) -> str:
    """A fresh database with `n` queued jobs of the bench tenant, or spread
    over `spread` tenants (bench-0 ...) under their quotas."""
    dsn = await bench.bench_db(server_dsn)
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    try:
        # Disabled until the workers are up (drain's way to leave their
        # start-up out of the measurement).
        for k in range(spread):
            await tenants.upsert(pool, tenant_id=TenantId(f"bench-{k}"),
                                 quotas=TenantQuotas(max_concurrent=PER_TENANT, enabled=False))
        await pool.execute(SEED, n, "bench", spread)
        await pool.execute("VACUUM ANALYZE jobs")
    finally:
        await pool.close()
    return dsn


async def lease_latency(server_dsn: str, queued: int, rounds: int = 200) -> list[bench.Row]:
    dsn = await _seeded(server_dsn, queued, 0)
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    worker = WorkerId(f"bench-{uuid.uuid4().hex[:8]}")
    ms: list[float] = []
    try:
        postmaster = await benchdb.find_postmaster(dsn)
        s0 = benchdb.server_cpu_seconds(postmaster)
        for _ in range(min(rounds, queued // 10)):
            t0 = time.perf_counter()
            got = await leases.lease(pool, queue="default", worker_id=worker, limit=10,
                                     lease_seconds=60)
            ms.append((time.perf_counter() - t0) * 1000)
            await leases.ack(pool, done=[(g.job_id, g.token, None) for g in got])
        s1 = benchdb.server_cpu_seconds(postmaster)
    finally:
        await pool.close()
        await benchdb.drop_db(server_dsn, dsn)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    server = "" if s0 is None or s1 is None else (
        f", PostgreSQL CPU {(s1 - s0) * 1000 / len(ms):.2f} ms per lease + ack")
    return [bench.Row("backlog", f"lease of 10 (then ack), {queued:,} queued, {len(ms)} leases",
                      f"p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms{server}")]


async def backlog_section(server_dsn: str, quick: bool) -> list[bench.Row]:
    rows: list[bench.Row] = []
    for queued in (1_000, 100_000 if quick else 1_000_000):
        rows += await lease_latency(server_dsn, queued)
    return rows


async def tenants_drain(server_dsn: str, n: int, concurrency: int) -> bench.Drain:
    dsn = await _seeded(server_dsn, n, TENANTS)
    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    procs = bench.start_workers(dsn, 2, concurrency)
    try:
        postmaster = await benchdb.find_postmaster(dsn)
        await bench.workers_ready(pool, 2, procs)
        cpu0 = benchdb.cpu_seconds(*(p.pid for p in procs))
        server0 = benchdb.server_cpu_seconds(postmaster)
        t0 = time.perf_counter()
        await pool.execute("UPDATE tenants SET enabled = true WHERE id LIKE 'bench-%'")
        await bench.settle(pool, procs)
        elapsed = time.perf_counter() - t0
        cpu = benchdb.cpu_seconds(*(p.pid for p in procs)) - cpu0
        server1 = benchdb.server_cpu_seconds(postmaster)
        done = await pool.fetchval("SELECT count(*) FROM jobs WHERE status = 'succeeded'")
    finally:
        bench.stop_workers(procs)
        await pool.close()
        await benchdb.drop_db(server_dsn, dsn)
    if done != n:
        raise RuntimeError(f"only {done} of {n} jobs succeeded")
    server = None if server0 is None or server1 is None else server1 - server0
    return bench.Drain(n / elapsed, cpu * 1e6 / n, bench.per_1000(server, n))


async def tenants_section(server_dsn: str, n: int, concurrency: int) -> list[bench.Row]:
    d = await tenants_drain(server_dsn, n, concurrency)
    what = (f"{n:,} jobs over {TENANTS} tenants (max_concurrent {PER_TENANT} each), "
            f"2 workers x {concurrency} slots")
    return [
        bench.Row("tenants", what, f"{d.jobs_per_second:,.0f} jobs/s"),
        bench.Row("tenants", "  worker CPU per 1,000 jobs", bench._ms([d.worker_ms_per_1000])),
        bench.Row("tenants", "  PostgreSQL CPU per 1,000 jobs",
                  bench._ms([d.server_ms_per_1000])),
    ]
