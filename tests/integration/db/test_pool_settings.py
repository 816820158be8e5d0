"""Every process's pool comes from `db.open_pool` and honours the database
settings: with `statement_cache_size=0` (what PgBouncer in transaction mode
needs) no named prepared statement is left on the server, where a pooler
would hand it to another client; with the cache on, asyncpg's named
statements show in the server's `pg_prepared_statements`."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from jobqueue import db
from jobqueue.commands.common import migrate, with_pool
from jobqueue.db import tenants
from jobqueue.models import TenantId, TenantQuotas
from jobqueue.settings import DatabaseSettings, RuntimeSettings
from jobqueue_operator.databases import Databases


async def server_side(pool: db.Pool) -> tuple[list[str], str]:
    """Run a db-layer call, then ask the server, on the same connection, which
    named prepared statements it holds and what the connection is called."""
    async with pool.acquire() as conn:
        await tenants.upsert(conn, tenant_id=TenantId("acme"), quotas=TenantQuotas())
        await tenants.list_tenants(conn)
        names = [r["name"] for r in await conn.fetch("SELECT name FROM pg_prepared_statements")]
        app = await conn.fetchval("SELECT current_setting('application_name')")
    return names, str(app)


def settings(dsn: str, cache: int) -> DatabaseSettings:
    return DatabaseSettings(url=SecretStr(dsn), statement_cache_size=cache)


@pytest.mark.parametrize("cache", [0, 256])
async def test_open_pool_prepares_named_statements_only_with_the_cache_on(
    dsn: str, cache: int
) -> None:
    pool = await db.open_pool(settings(dsn, cache), application_name="jobqueue-test", max_size=1)
    try:
        names, app = await server_side(pool)
    finally:
        await pool.close()
    assert app == "jobqueue-test"
    assert (names == []) is (cache == 0), names


@pytest.mark.parametrize("cache", [0, 256])
async def test_operator_pools_honour_statement_cache_size(dsn: str, cache: int) -> None:
    databases = Databases(settings("postgresql://unused@localhost/none", cache),
                          timeout=10, pool_max=1)
    try:
        names, app = await databases.run(dsn, server_side)
    finally:
        await databases.close()
    assert app == "jobqueue-operator"
    assert (names == []) is (cache == 0), names


@pytest.mark.parametrize("cache", ["0", "256"])
async def test_cli_pool_takes_statement_cache_size_from_the_environment(
    dsn: str, cache: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", dsn)
    monkeypatch.setenv("JOBQUEUE_DATABASE_STATEMENT_CACHE_SIZE", cache)
    database = RuntimeSettings().database
    # `jobqueue migrate` connects the same way; safe to run twice.
    assert not await migrate(database)
    names, app = await with_pool(database, server_side)
    assert app == "jobqueue-cli"
    assert (names == []) is (cache == "0"), names
