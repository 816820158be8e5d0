"""One database and one `jobqueue api` process per test module; tenants per test.

Tests that need a server of their own (other settings, several replicas, a
database outage) start it with `support.running_api`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from jobqueue import db
from tests.conftest import PgServer, create_database, drop_database
from tests.support import api as support
from tests.support.procs import Proc


@pytest.fixture(scope="module")
async def api_dsn(pg_server: PgServer, template_db: str) -> AsyncIterator[str]:
    name = await create_database(pg_server, template_db)
    try:
        yield pg_server.dsn_for(name)
    finally:
        await drop_database(pg_server, name)


@pytest.fixture(scope="module")
async def api_pool(api_dsn: str) -> AsyncIterator[db.Pool]:
    pool = await db.create_pool(api_dsn, min_size=1, max_size=10)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-logs")


@pytest.fixture(scope="module")
async def api(api_dsn: str, logs: Path) -> AsyncIterator[Proc]:
    # No tenant cache: a test that disables a tenant sees it at once.
    async with support.running_api(api_dsn, logs, api_tenant_cache_seconds=0) as server:
        yield server


@pytest.fixture
async def anon(api: Proc) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        yield client


@pytest.fixture
async def tenant_a(api_pool: db.Pool) -> support.TenantKey:
    return await support.tenant_with_key(api_pool)


@pytest.fixture
async def tenant_b(api_pool: db.Pool) -> support.TenantKey:
    return await support.tenant_with_key(api_pool)


@pytest.fixture
async def client_a(
    api: Proc, tenant_a: support.TenantKey
) -> AsyncIterator[httpx.AsyncClient]:
    async with support.authed(api.url, tenant_a) as client:
        yield client


@pytest.fixture
async def client_b(
    api: Proc, tenant_b: support.TenantKey
) -> AsyncIterator[httpx.AsyncClient]:
    async with support.authed(api.url, tenant_b) as client:
        yield client


@pytest.fixture
async def admin(api: Proc) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=api.url, timeout=30, headers=support.bearer(support.ADMIN_TOKEN)
    ) as client:
        yield client
