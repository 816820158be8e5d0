"""Real API servers for the tests (`jobqueue api` processes on a free port),
tenants with keys and tokens to call them with.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
from websockets.asyncio.client import ClientConnection, connect

from jobqueue import apikeys, db
from jobqueue.db import tenants
from jobqueue.embedded import free_port
from jobqueue.models import TenantId
from tests import factories
from tests.support.procs import Proc

JWT_SECRET = "test-signing-secret-" + "x" * 32
ADMIN_TOKEN = "test-admin-token-" + "y" * 32


def api_env(port: int, **settings: object) -> dict[str, str]:
    """JOBQUEUE_* settings from `settings` (names without the prefix); names
    already in upper case (e.g. OTEL_TRACES_EXPORTER) are passed as they are."""
    env = {
        "JOBQUEUE_API_PORT": str(port),
        "JOBQUEUE_API_JWT_SECRET": JWT_SECRET,
        "JOBQUEUE_API_ADMIN_TOKEN": ADMIN_TOKEN,
        "JOBQUEUE_LOG_FORMAT": "json",
    }
    for name, value in settings.items():
        env[name if name.isupper() else f"JOBQUEUE_{name.upper()}"] = str(value)
    return env


def api_process(dsn: str, log_dir: Path, *, port: int | None = None,
                **settings: object) -> Proc:
    port = port or free_port()
    return Proc(f"api-{port}", ["api"], logdir=log_dir, dsn=dsn, clean_env=True,
                env=api_env(port, **settings), url=f"http://127.0.0.1:{port}")


async def start_api(dsn: str, log_dir: Path, **settings: object) -> Proc:
    """Start `jobqueue api` and wait until it answers /healthz.

    `settings` are JOBQUEUE_* variables without the prefix, e.g.
    `api_tenant_cache_seconds=0`.
    """
    return await api_process(dsn, log_dir, **settings).serve("/healthz")


@contextlib.asynccontextmanager
async def running_api(dsn: str, log_dir: Path, **settings: object) -> AsyncIterator[Proc]:
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


def mint(tenant_id: TenantId, ttl_seconds: int = 600) -> str:
    """A valid tenant token made here, without spending a request on /auth/token."""
    now = int(time.time())
    claims = {"sub": tenant_id, "iat": now, "exp": now + ttl_seconds, "iss": "jobqueue"}
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


# -- WebSocket watchers ----------------------------------------------------------

def ws_url(api: Proc, token: str | None = None) -> str:
    url = api.url.replace("http://", "ws://") + "/ws/jobs"
    return url if token is None else f"{url}?token={token}"


async def recv(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    message = await asyncio.wait_for(ws.recv(), timeout)
    parsed: dict[str, Any] = json.loads(message)
    return parsed


@asynccontextmanager
async def watching(url: str, first_message: str | None = None) -> AsyncIterator[ClientConnection]:
    async with connect(url) as ws:
        if first_message is not None:
            await ws.send(first_message)
        assert await recv(ws) == {"type": "ready"}
        yield ws
