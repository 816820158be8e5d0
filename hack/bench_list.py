#!/usr/bin/env python3
"""Listing at millions of rows: GET /v1/jobs, first page and deep page.

Seeds a tenant's history of N finished jobs with generate_series (in SQL:
minutes through the API; the secondary indexes are dropped for the load and
built again after it), spread over eight days as the reaper leaves them:
the last day in the hot table, the week before in history's day
partitions. Vacuums it as autovacuum would, starts one
`jobqueue api` process and measures p50/p95 of:
- the first page (50 jobs, newest first, with its capped total);
- a deep page: `after=` a cursor 90% of the way down the history;
- the same two filtered by status=dlq (1% of the rows);
- the first page filtered by queue and by a time range.

    python hack/bench_list.py                 # 1,000,000 and 10,000,000 rows
    python hack/bench_list.py --rows 100000   # quicker
    python hack/bench.py --only list          # the same, as a section of bench.py

DATABASE_URL points it at another server (it creates its own database there).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx

import benchdb  # hack/benchdb.py, next to this file
from jobqueue import db
from jobqueue.api import cursor
from jobqueue.db import queries, tenants
from jobqueue.embedded import free_port
from jobqueue.models import Cursor, TenantId, TenantQuotas

Q = queries.parse((Path(__file__).parent / "bench_list.sql").read_text())
TENANT = TenantId("bench")
ADMIN = "bench-admin-token-" + "z" * 32
SECRET = "bench-signing-secret-" + "x" * 32
CHUNK = 500_000
# The seeded history spans what the reaper keeps by default: a week of day
# partitions (JOBQUEUE_REAPER_RETENTION_SECONDS) and the last day, still in
# the hot table (JOBQUEUE_REAPER_ARCHIVE_AFTER_SECONDS).
SPAN_SECONDS = 8 * 86400.0
QUOTAS = TenantQuotas(rate_per_minute=100_000_000, rate_burst=10_000_000)


@dataclass(frozen=True)
class Measured:
    what: str
    p50_ms: float
    p95_ms: float
    total: int
    exact: bool


async def seed(dsn: str, rows: int) -> float:
    """The history, vacuumed and analyzed; returns the seconds it took."""
    began = time.monotonic()
    conn = await db.connect(dsn)
    try:
        await tenants.upsert(conn, tenant_id=TENANT, quotas=QUOTAS)
        await conn.execute(Q["events_off"])
        await conn.execute(Q["bulk_session"])
        indexes = await conn.fetch(Q["secondary_indexes"])
        for ix in indexes:
            await conn.execute(ix["drop_sql"])
        step = SPAN_SECONDS / rows
        await conn.execute(Q["partitions"], SPAN_SECONDS)
        for start in range(1, rows + 1, CHUNK):
            for where, query in (("history", "seed_history"), ("hot", "seed")):
                await conn.execute(Q[query], TENANT, start, min(rows, start + CHUNK - 1), rows,
                                   step, where)
        for ix in indexes:
            await conn.execute(ix["create_sql"])
        # What autovacuum does to a table that stopped changing: index-only
        # scans for the counts need the visibility map.
        await conn.execute("VACUUM (ANALYZE) jobs")
        await conn.execute("VACUUM (ANALYZE) jobs_history")
    finally:
        await conn.close()
    return time.monotonic() - began


async def _cursor_at(dsn: str, depth: int, status: str | None = None) -> str:
    conn = await db.connect(dsn)
    try:
        r = await conn.fetchrow(Q["row_at"], TENANT, depth, status)
    finally:
        await conn.close()
    return cursor.encode(Cursor(r["created_at"], r["seq"]))


@contextlib.contextmanager
def api_process(dsn: str, port: int, log: Path) -> Iterator[None]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")}
    env.update(
        DATABASE_URL=dsn,
        JOBQUEUE_API_PORT=str(port),
        JOBQUEUE_API_JWT_SECRET=SECRET,
        JOBQUEUE_API_ADMIN_TOKEN=ADMIN,
        JOBQUEUE_LOG_LEVEL="WARNING",
    )
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "jobqueue.cli", "api"], env=env,
                                stdout=out, stderr=out)
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _wait_up(client: httpx.AsyncClient) -> None:
    for _ in range(300):
        with contextlib.suppress(httpx.TransportError):
            if (await client.get("/readyz")).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError("the API did not become ready")


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def _measure(
    client: httpx.AsyncClient, what: str, params: dict[str, str], runs: int
) -> Measured:
    took: list[float] = []
    body: dict[str, object] = {}
    for _ in range(runs):
        t0 = time.perf_counter()
        r = await client.get("/v1/jobs", params=params)
        took.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"{what}: {r.status_code} {r.text}")
        body = r.json()
    assert isinstance(body["jobs"], list) and body["jobs"], f"{what}: an empty page"
    return Measured(what, _p(took, 0.5), _p(took, 0.95), int(str(body["total"])),
                    bool(body["total_exact"]))


async def run(server_dsn: str, rows: int, runs: int) -> tuple[float, list[Measured]]:
    dsn = await benchdb.fresh_db(server_dsn, "bench_list")
    try:
        seeded = await seed(dsn, rows)
        deep = await _cursor_at(dsn, rows * 9 // 10)
        deep_dlq = await _cursor_at(dsn, rows // 100 * 9 // 10, "dlq")
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp, \
                api_process(dsn, port, Path(tmp) / "api.log"):
            headers = {"Authorization": f"Bearer {_token()}"}
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers,
                                         timeout=60) as client:
                await _wait_up(client)
                newest = (await client.get("/v1/jobs", params={"page_size": "1"})).json()
                since = _iso(newest["jobs"][0]["created_at"], hours=-1)
                cases = [
                    ("first page", {}),
                    ("deep page (after=, 90% down)", {"after": deep}),
                    ("first page, status=dlq", {"status": "dlq"}),
                    ("deep page, status=dlq", {"status": "dlq", "after": deep_dlq}),
                    ("first page, queue=q1", {"queue": "q1"}),
                    ("first page, last hour", {"created_after": since}),
                    ("admin, first page", {}),
                ]
                out = []
                for what, params in cases:
                    if what.startswith("admin"):
                        client.headers["Authorization"] = f"Bearer {ADMIN}"
                    await _measure(client, what, params, 5)  # warm caches and plans
                    out.append(await _measure(client, what, params, runs))
    finally:
        await benchdb.drop_db(server_dsn, dsn)
    return seeded, out


def _iso(text: str, hours: int) -> str:
    from datetime import datetime

    return (datetime.fromisoformat(text) + timedelta(hours=hours)).isoformat()


def _token() -> str:
    from jobqueue.api import tokens

    return tokens.issue(SECRET, TENANT, 3600).token


def report(rows: int, seeded: float, found: list[Measured]) -> list[tuple[str, str]]:
    out = [(f"{rows:,} rows: seeded", f"{seeded:,.0f} s (generate_series, then VACUUM ANALYZE)")]
    for m in found:
        total = f"{m.total:,}" if m.exact else f"at least {m.total:,}"
        out.append((f"{rows:,} rows: {m.what}",
                    f"p50 {m.p50_ms:.1f} ms, p95 {m.p95_ms:.1f} ms (total {total})"))
    return out


async def main(args: argparse.Namespace) -> None:
    with benchdb.server() as server_dsn:
        for rows in args.rows:
            seeded, found = await run(server_dsn, rows, args.runs)
            for what, value in report(rows, seeded, found):
                print(f"{what:<50}  {value}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--runs", type=int, default=200, help="requests per measurement")
    asyncio.run(main(parser.parse_args()))
