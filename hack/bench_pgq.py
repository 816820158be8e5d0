"""pgqueuer's side of `hack/bench.py --compare pgqueuer`: the factory that
`pgq run` starts, with one no-op entrypoint, as pgqueuer's documentation
writes it (an async context manager yielding a PgQueuer on an asyncpg
connection; `pgq run module:factory`).

    PGDSN=postgresql://... pgq run bench_pgq:create_pgqueuer --batch-size 10

BENCH_PGQ_LATENCY_FILE, when set, gets one line per job: the milliseconds
from its enqueue to its pick, both on the database clock (pgqueuer sets
`created` at insert and `updated` when a worker picks the job).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TextIO

import asyncpg
from pgqueuer import PgQueuer
from pgqueuer.db import AsyncpgDriver
from pgqueuer.models import Job


def _latency_file() -> TextIO | None:
    path = os.environ.get("BENCH_PGQ_LATENCY_FILE")
    return open(path, "a", buffering=1) if path else None


@asynccontextmanager
async def create_pgqueuer() -> AsyncIterator[PgQueuer]:
    conn = await asyncpg.connect(
        os.environ["PGDSN"], server_settings={"application_name": "pgq-bench"}
    )
    pgq = PgQueuer(AsyncpgDriver(conn))
    out = _latency_file()

    @pgq.entrypoint("noop")
    async def noop(job: Job) -> None:
        if out is not None:
            out.write(f"{(job.updated - job.created).total_seconds() * 1000:.3f}\n")

    try:
        yield pgq
    finally:
        await conn.close()
