#!/usr/bin/env python3
"""Benchmark the HTTP API: one `jobqueue api` process on an embedded Postgres.

Prints: single-job submits per second with N concurrent clients (each a
keep-alive connection sending POST /v1/jobs with its own Idempotency-Key)
and their p50/p99 latency; batch-submit jobs per second (POST
/v1/jobs/batch, one client) and the batch call's p50/p99. The load comes
from this process, on the same machine, so it competes with the API and
Postgres for the CPUs; the CPU use of the API process and of the load
generator is printed to show which side was the bottleneck.

    python hack/bench_api.py [--clients 32] [--seconds 10] [--batch 1000] [--batches 20]

DATABASE_URL points it at another server (it creates its own database there).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

import benchdb  # hack/benchdb.py, next to this file
from jobqueue import apikeys, db
from jobqueue.db import tenants
from jobqueue.embedded import free_port
from jobqueue.models import TenantId, TenantQuotas

TENANT = TenantId("bench")
# Quotas out of the way: this measures the API, not the limits.
QUOTAS = TenantQuotas(rate_per_minute=100_000_000, rate_burst=10_000_000, max_queued=100_000_000)
SECRET = "bench-signing-secret-" + "x" * 32


@dataclass(frozen=True)
class HttpBenchResult:
    clients: int
    single_submits_per_second: float
    single_p50_ms: float
    single_p99_ms: float
    single_errors: int
    batch_size: int
    batch_jobs_per_second: float
    batch_p50_ms: float
    batch_p99_ms: float
    api_cpu_percent_single: float
    api_cpu_percent_batch: float
    load_generator_cpu_percent_single: float


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def _prepare(server_dsn: str) -> tuple[str, str]:
    """A fresh migrated database and the bench tenant's API key."""
    dsn = await benchdb.fresh_db(server_dsn, "bench_api")
    conn = await db.connect(dsn)
    try:
        await tenants.upsert(conn, tenant_id=TENANT, quotas=QUOTAS)
        key = apikeys.generate()
        await tenants.add_api_key(conn, tenant_id=TENANT, key_hash=apikeys.digest(key))
    finally:
        await conn.close()
    return dsn, key


@contextlib.contextmanager
def _api_process(dsn: str, port: int, log: Path) -> Iterator[int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBQUEUE_")}
    env.update(
        DATABASE_URL=dsn,
        JOBQUEUE_API_PORT=str(port),
        JOBQUEUE_API_JWT_SECRET=SECRET,
        JOBQUEUE_LOG_LEVEL="WARNING",
    )
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobqueue.cli", "api"], env=env, stdout=out, stderr=out
        )
    try:
        yield proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _wait_up(url: str) -> None:
    async with httpx.AsyncClient(base_url=url) as c:
        for _ in range(300):
            with contextlib.suppress(httpx.TransportError):
                if (await c.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("the API did not become ready")


class _Connection:
    """One keep-alive HTTP/1.1 connection, the way wrk drives a server.

    httpx's own per-request cost (several milliseconds of CPU with 32
    concurrent requests on these machines) would measure the client.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{head}\r\n".encode()
            + body
        )
        response = await self.reader.readuntil(b"\r\n\r\n")
        lines = response.split(b"\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in lines
            if line.lower().startswith(b"content-length:")
        )
        await self.reader.readexactly(length)
        return int(lines[0].split()[1])

    def close(self) -> None:
        self.writer.close()


async def _singles(
    port: int, token: str, clients: int, seconds: float
) -> tuple[int, list[float], int]:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def one_client(k: int) -> None:
        nonlocal errors
        conn = await _Connection.open(port)
        n = 0
        try:
            while time.perf_counter() < stop:
                body = json.dumps({"type": "noop", "data": {"client": k, "n": n}}).encode()
                headers = {
                    "Authorization": f"Bearer {token}",
                    "Idempotency-Key": f"{k}-{n}-{uuid.uuid4().hex[:8]}",
                }
                t0 = time.perf_counter()
                status = await conn.post("/v1/jobs", body, headers)
                latencies.append((time.perf_counter() - t0) * 1000)
                if status != 201:
                    errors += 1
                n += 1
        finally:
            conn.close()

    await asyncio.gather(*(one_client(k) for k in range(clients)))
    return len(latencies), latencies, errors


async def _batches(client: httpx.AsyncClient, size: int, count: int) -> tuple[int, list[float]]:
    latencies: list[float] = []
    for b in range(count):
        jobs = [
            {"type": "noop", "data": {"b": b, "i": i}, "idempotency_key": f"b{b}-{i}"}
            for i in range(size)
        ]
        t0 = time.perf_counter()
        r = await client.post("/v1/jobs/batch", json={"jobs": jobs})
        latencies.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200 or r.json()["created"] != size:
            raise RuntimeError(f"batch failed: {r.status_code} {r.text[:200]}")
    return size * count, latencies


async def run_http_bench(
    server_dsn: str,
    *,
    clients: int = 32,
    seconds: float = 10.0,
    batch_size: int = 1000,
    batches: int = 20,
    warmup_seconds: float = 1.0,
) -> HttpBenchResult:
    """Start one API process on a fresh database of `server_dsn`'s server and load it."""
    dsn, key = await _prepare(server_dsn)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkstemp(prefix="bench-api-", suffix=".log")[1])
    with _api_process(dsn, port, log) as pid:
        await _wait_up(url)
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
            r = await client.post("/auth/token", json={"tenant_id": TENANT, "api_key": key})
            token = r.json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            await _singles(port, token, clients, warmup_seconds)

            cpu0, t0 = benchdb.cpu_seconds(pid), time.perf_counter()
            me0 = benchdb.cpu_seconds(os.getpid())
            n, lat, errors = await _singles(port, token, clients, seconds)
            elapsed = time.perf_counter() - t0
            cpu_single = (benchdb.cpu_seconds(pid) - cpu0) / elapsed * 100
            cpu_driver = (benchdb.cpu_seconds(os.getpid()) - me0) / elapsed * 100

            cpu0, t0 = benchdb.cpu_seconds(pid), time.perf_counter()
            jobs, batch_lat = await _batches(client, batch_size, batches)
            batch_elapsed = time.perf_counter() - t0
            cpu_batch = (benchdb.cpu_seconds(pid) - cpu0) / batch_elapsed * 100
    os.unlink(log)
    await benchdb.drop_db(server_dsn, dsn)
    return HttpBenchResult(
        clients=clients,
        single_submits_per_second=n / elapsed,
        single_p50_ms=statistics.median(lat),
        single_p99_ms=_p(lat, 0.99),
        single_errors=errors,
        batch_size=batch_size,
        batch_jobs_per_second=jobs / batch_elapsed,
        batch_p50_ms=statistics.median(batch_lat),
        batch_p99_ms=_p(batch_lat, 0.99),
        api_cpu_percent_single=cpu_single,
        api_cpu_percent_batch=cpu_batch,
        load_generator_cpu_percent_single=cpu_driver,
    )


def report(r: HttpBenchResult) -> str:
    return "\n".join(
        [
            f"HTTP single submit, {r.clients} clients  {r.single_submits_per_second:10,.0f} jobs/s"
            f"   p50 {r.single_p50_ms:6.2f} ms   p99 {r.single_p99_ms:6.2f} ms"
            f"   errors {r.single_errors}   (CPU: API process {r.api_cpu_percent_single:.0f}%,"
            f" load generator {r.load_generator_cpu_percent_single:.0f}%)",
            f"HTTP batch submit ({r.batch_size}/request)   {r.batch_jobs_per_second:10,.0f} jobs/s"
            f"   p50 {r.batch_p50_ms:6.2f} ms   p99 {r.batch_p99_ms:6.2f} ms"
            f"   (API process CPU {r.api_cpu_percent_batch:.0f}%)",
        ]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--batch", type=int, default=1000, help="jobs per batch request")
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args()

    async def go(server_dsn: str) -> HttpBenchResult:
        return await run_http_bench(
            server_dsn,
            clients=args.clients,
            seconds=args.seconds,
            batch_size=args.batch,
            batches=args.batches,
        )

    with benchdb.server() as server_dsn:
        result = asyncio.run(go(server_dsn))
    if args.json:
        print(json.dumps(asdict(result), indent=2))
    else:
        print(report(result))


if __name__ == "__main__":
    main()
