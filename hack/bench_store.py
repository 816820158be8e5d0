#!/usr/bin/env python3
"""Benchmark the db layer alone (no worker, no HTTP) on an embedded Postgres.

Prints: batch-submit jobs/s; lease+ack jobs/s with 1, 4 and 16 concurrent
leasers; lease latency with 1,000 and 100,000 jobs queued; lease latency
and throughput with 10, 100 and 1,000 tenants all backlogged; lease latency
of one busy tenant among 10,000 idle ones.

    python hack/bench_store.py [--jobs 20000] [--batch 100]

DATABASE_URL points it at another server (it creates and drops its own
database there).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import benchdb  # hack/benchdb.py, next to this file
from jobqueue import db
from jobqueue.db import jobs, leases, tenants
from jobqueue.models import NewJob, TenantId, TenantQuotas, WorkerId

TENANT = TenantId("bench")
QUOTAS = TenantQuotas(max_concurrent=1_000_000)


async def submit_batches(pool: db.Pool, n: int, batch: int = 1000) -> float:
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        await jobs.submit_many(
            pool,
            tenant_id=TENANT,
            jobs=[NewJob(type="noop", data={"i": i}) for i in range(start, min(n, start + batch))],
        )
    return n / (time.perf_counter() - t0)


async def lease_ack(pool: db.Pool, n: int, leasers: int, batch: int) -> float:
    done = 0

    async def leaser(k: int) -> None:
        nonlocal done
        me = WorkerId(f"bench-{k}")
        while True:
            got = await leases.lease(
                pool, queue="default", worker_id=me, limit=batch, lease_seconds=60
            )
            if not got:
                return
            await leases.ack(pool, done=[(g.job_id, g.token, None) for g in got])
            done += len(got)

    t0 = time.perf_counter()
    await asyncio.gather(*(leaser(k) for k in range(leasers)))
    elapsed = time.perf_counter() - t0
    assert done == n, (done, n)
    return n / elapsed


async def lease_latency(pool: db.Pool, samples: int = 200, batch: int = 10) -> tuple[float, float]:
    """p50 and p99 milliseconds of one lease call (jobs are released after)."""
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        got = await leases.lease(
            pool, queue="default", worker_id=WorkerId("lat"), limit=batch, lease_seconds=60
        )
        times.append((time.perf_counter() - t0) * 1000)
        await leases.ack(pool, done=[(g.job_id, g.token, None) for g in got])
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


async def many_tenants(server_dsn: str, count: int, batch: int = 50) -> tuple[float, float, float]:
    """Lease latency p50/p99 (ms) and lease+ack jobs/s with `count` tenants,
    every one backlogged: the cost of fairness across tenants."""
    per_tenant = max(100, 20_000 // count)
    dsn = await benchdb.fresh_db(server_dsn)
    pool = await db.create_pool(dsn, min_size=4, max_size=20)
    try:
        ids = [TenantId(f"t{i:05d}") for i in range(count)]
        for tid in ids:
            await tenants.upsert(pool, tenant_id=tid, quotas=QUOTAS)
        for tid in ids:
            await jobs.submit_many(pool, tenant_id=tid,
                                   jobs=[NewJob(type="noop") for _ in range(per_tenant)])
        await pool.execute("VACUUM ANALYZE jobs")
        samples = 100
        p50, p99 = await lease_latency(pool, samples=samples, batch=batch)
        rate = await lease_ack(pool, count * per_tenant - samples * batch, 4, batch)
        return p50, p99, rate
    finally:
        await pool.close()
        await benchdb.drop_db(server_dsn, dsn)


async def run(server_dsn: str, n: int, batch: int) -> None:
    dsn = await benchdb.fresh_db(server_dsn)
    pool = await db.create_pool(dsn, min_size=4, max_size=20)
    try:
        await tenants.upsert(pool, tenant_id=TENANT, quotas=QUOTAS)
        rate = await submit_batches(pool, n)
        print(f"batch submit (1000/statement)     {rate:10,.0f} jobs/s")
        for leasers in (1, 4, 16):
            if leasers > 1:
                await submit_batches(pool, n)
            rate = await lease_ack(pool, n, leasers, batch)
            print(f"lease+ack, {leasers:2d} leasers, batch {batch:<4d} {rate:10,.0f} jobs/s")
        lat = {}
        for depth in (1_000, 100_000):
            await submit_batches(pool, depth + 2000)
            await pool.execute("VACUUM ANALYZE jobs")
            lat[depth] = await lease_latency(pool)
            await lease_ack(pool, depth, 4, 500)
            print(
                f"lease latency at {depth:>7,} queued    p50 {lat[depth][0]:6.2f} ms"
                f"   p99 {lat[depth][1]:6.2f} ms"
            )
        ratio = lat[100_000][0] / lat[1_000][0]
        print(f"p50 ratio 100k/1k                  {ratio:10.2f}x (must be < 2x)")
    finally:
        await pool.close()


async def idle_tenants(server_dsn: str, idle: int, batch: int = 50) -> tuple[float, float]:
    """Lease latency p50/p99 (ms) for one backlogged tenant among `idle`
    tenants with nothing queued: what a mostly quiet SaaS platform pays."""
    dsn = await benchdb.fresh_db(server_dsn)
    pool = await db.create_pool(dsn, min_size=2, max_size=4)
    try:
        await tenants.upsert(pool, tenant_id=TENANT, quotas=QUOTAS)
        for i in range(idle):
            await tenants.upsert(pool, tenant_id=TenantId(f"idle{i:05d}"), quotas=QUOTAS)
        await submit_batches(pool, 10_000)
        await pool.execute("VACUUM ANALYZE")
        return await lease_latency(pool, samples=100, batch=batch)
    finally:
        await pool.close()
        await benchdb.drop_db(server_dsn, dsn)


async def run_tenants(server_dsn: str, counts: list[int]) -> None:
    for count in counts:
        p50, p99, rate = await many_tenants(server_dsn, count)
        print(f"{count:>5,} backlogged tenants, batch 50  lease p50 {p50:6.2f} ms"
              f"   p99 {p99:6.2f} ms   lease+ack x4 {rate:8,.0f} jobs/s")
    for idle in (0, 10_000):
        p50, p99 = await idle_tenants(server_dsn, idle)
        print(f"1 busy + {idle:>6,} idle tenants, batch 50  lease p50 {p50:6.2f} ms"
              f"   p99 {p99:6.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=100, help="lease batch size")
    ap.add_argument("--tenants", default="10,100,1000",
                    help="backlogged tenant counts for the fairness section ('' skips it)")
    ap.add_argument("--only-tenants", action="store_true", help="just the fairness section")
    args = ap.parse_args()
    counts = [int(c) for c in args.tenants.split(",") if c]
    with benchdb.server() as server_dsn:
        if args.only_tenants:
            asyncio.run(run_tenants(server_dsn, counts))
        else:
            asyncio.run(run(server_dsn, args.jobs, args.batch))
            asyncio.run(run_tenants(server_dsn, counts))


if __name__ == "__main__":
    main()
