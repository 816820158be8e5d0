#!/usr/bin/env python3
"""One producer process of `hack/bench.py --compare`: batch-enqueue N no-op
jobs into SYSTEM and print, as one JSON line, the rate and the CPU time this
process spent enqueueing (its start-up and imports excluded).

    python hack/bench_enqueue.py jobqueue|pgqueuer DSN N [--batch 1000] [--single EVERY_MS]

`jobqueue` is whichever jobqueue PYTHONPATH finds (the harness points it at
another tree to measure an older version); it submits through the db layer,
as the bench tenant. `pgqueuer` uses its documented batch enqueue
(`Queries.enqueue` with lists). `--single EVERY_MS` submits one job per call
every EVERY_MS milliseconds instead (the light-load latency scenario).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable

Batch = Callable[[int, int], Awaitable[object]]


async def jobqueue_batch(dsn: str) -> tuple[Batch, Callable[[], Awaitable[None]]]:
    from jobqueue import db
    from jobqueue.db import jobs
    from jobqueue.models import NewJob, TenantId

    pool = await db.create_pool(dsn, min_size=1, max_size=2)
    tenant = TenantId("bench")

    async def batch(start: int, stop: int) -> object:
        if stop - start == 1:
            job = NewJob(type="echo", data={"i": start})
            return await jobs.submit(pool, tenant_id=tenant, job=job)
        return await jobs.submit_many(pool, tenant_id=tenant, jobs=[
            NewJob(type="echo", data={"i": i}) for i in range(start, stop)
        ])

    return batch, pool.close


async def pgqueuer_batch(dsn: str) -> tuple[Batch, Callable[[], Awaitable[None]]]:
    import asyncpg
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.queries import Queries

    conn = await asyncpg.connect(dsn)
    queries = Queries(AsyncpgDriver(conn))

    async def batch(start: int, stop: int) -> object:
        if stop - start == 1:
            return await queries.enqueue("noop", json.dumps({"i": start}).encode(), 0)
        n = stop - start
        return await queries.enqueue(
            ["noop"] * n, [json.dumps({"i": i}).encode() for i in range(start, stop)], [0] * n
        )

    return batch, conn.close


async def main(args: argparse.Namespace) -> None:
    make = jobqueue_batch if args.system == "jobqueue" else pgqueuer_batch
    batch, close = await make(args.dsn)
    cpu0, t0 = time.process_time(), time.perf_counter()
    if args.single is None:
        for start in range(0, args.n, args.batch):
            await batch(start, min(args.n, start + args.batch))
    else:
        every = args.single / 1000
        for i in range(args.n):
            await batch(i, i + 1)
            await asyncio.sleep(max(0.0, t0 + (i + 1) * every - time.perf_counter()))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await close()
    print(json.dumps({"jobs_per_second": args.n / elapsed, "cpu_seconds": cpu,
                      "seconds": elapsed}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("system", choices=("jobqueue", "pgqueuer"))
    parser.add_argument("dsn")
    parser.add_argument("n", type=int)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--single", type=float, metavar="EVERY_MS")
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(parser.parse_args()))
    else:
        uvloop.run(main(parser.parse_args()))
