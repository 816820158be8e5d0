"""Real API servers for the tests: `jobqueue api` processes on a free port.

Also a TCP proxy between a server and Postgres that a test can cut and
restore, to make a database outage without touching the shared server.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt

from jobqueue import apikeys, db
from jobqueue.db import tenants
from jobqueue.embedded import free_port
from jobqueue.models import TenantId
from tests import factories

JWT_SECRET = "test-signing-secret-" + "x" * 32
ADMIN_TOKEN = "test-admin-token-" + "y" * 32
STARTUP_SECONDS = 30.0


@dataclass
class ApiProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def api_env(dsn: str, port: int, **settings: object) -> dict[str, str]:
    """JOBQUEUE_* settings from `settings` (names without the prefix); names
    already in upper case (e.g. OTEL_TRACES_EXPORTER) are passed as they are."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JOBQUEUE_", "OTEL_"))}
    env.update(
        DATABASE_URL=dsn,
        JOBQUEUE_API_PORT=str(port),
        JOBQUEUE_API_JWT_SECRET=JWT_SECRET,
        JOBQUEUE_API_ADMIN_TOKEN=ADMIN_TOKEN,
        JOBQUEUE_LOG_FORMAT="json",
    )
    for name, value in settings.items():
        env[name if name.isupper() else f"JOBQUEUE_{name.upper()}"] = str(value)
    return env


def spawn_api(dsn: str, log_dir: Path, **settings: object) -> ApiProcess:
    port = free_port()
    log_path = log_dir / f"api-{port}.log"
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobqueue.cli", "api"],
            env=api_env(dsn, port, **settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return ApiProcess(f"http://127.0.0.1:{port}", proc, log_path)


async def start_api(dsn: str, log_dir: Path, **settings: object) -> ApiProcess:
    """Start `jobqueue api` and wait until it answers /healthz.

    `settings` are JOBQUEUE_* variables without the prefix, e.g.
    `api_tenant_cache_seconds=0`.
    """
    server = spawn_api(dsn, log_dir, **settings)
    proc = server.process
    deadline = time.monotonic() + STARTUP_SECONDS
    async with httpx.AsyncClient(base_url=server.url) as client:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jobqueue api exited with {proc.returncode}:\n{server.log()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get("/healthz")).status_code == 200:
                    return server
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"jobqueue api did not start:\n{server.log()}")
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def running_api(dsn: str, log_dir: Path, **settings: object) -> AsyncIterator[ApiProcess]:
    server = await start_api(dsn, log_dir, **settings)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class TenantKey:
    id: TenantId
    key: str


async def tenant_with_key(
    pool: db.Executor, name: str | None = None, **quotas: object
) -> TenantKey:
    t = await factories.tenant(pool, name, **quotas)
    key = apikeys.generate()
    await tenants.add_api_key(pool, tenant_id=t.id, key_hash=apikeys.digest(key))
    return TenantKey(t.id, key)


async def token(client: httpx.AsyncClient, tenant: TenantKey) -> str:
    r = await client.post("/auth/token", json={"tenant_id": tenant.id, "api_key": tenant.key})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextlib.asynccontextmanager
async def authed(url: str, tenant: TenantKey) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose every request carries the tenant's token."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        client.headers.update(bearer(await token(client, tenant)))
        yield client


class Proxy:
    """A TCP proxy to `target_port`; `cut()` closes everything, `restore()` reopens.

    While cut, connections are refused, as when the database is down.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))

    def dsn(self, dsn: str) -> str:
        """`dsn` rewritten to go through this proxy."""
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(dsn)
        user, _, _ = parts.netloc.rpartition("@")
        host = f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))


def mint(tenant_id: TenantId, ttl_seconds: int = 600) -> str:
    """A valid tenant token made here, without spending a request on /auth/token."""
    now = int(time.time())
    claims = {"sub": tenant_id, "iat": now, "exp": now + ttl_seconds, "iss": "jobqueue"}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")
