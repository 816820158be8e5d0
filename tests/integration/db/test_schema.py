"""Migrations and schema: idempotent, concurrent-safe, equal to schema.sql,
and every named query prepares against it."""

from __future__ import annotations

import asyncio

from jobqueue import db
from jobqueue.db import migrations, queries
from tests.conftest import PgServer, create_database, drop_database


async def _fresh(pg_server: PgServer) -> str:
    name = await create_database(pg_server, "template0")
    return name


async def test_migrations_run_twice_without_error(pg_server: PgServer) -> None:
    name = await _fresh(pg_server)
    try:
        conn = await db.connect(pg_server.dsn_for(name))
        try:
            first = await migrations.migrate(conn)
            second = await migrations.migrate(conn)
        finally:
            await conn.close()
        assert [m.version for m in first] == [m.version for m in migrations.available()]
        assert second == []
    finally:
        await drop_database(pg_server, name)


async def test_concurrent_migrations_apply_each_file_once(pg_server: PgServer) -> None:
    name = await _fresh(pg_server)
    try:
        conns = [await db.connect(pg_server.dsn_for(name)) for _ in range(4)]
        try:
            results = await asyncio.gather(*(migrations.migrate(c) for c in conns))
        finally:
            for c in conns:
                await c.close()
        applied = [m.version for r in results for m in r]
        assert sorted(applied) == [m.version for m in migrations.available()]
    finally:
        await drop_database(pg_server, name)


async def test_migrated_schema_equals_schema_sql(pg_server: PgServer) -> None:
    a = await _fresh(pg_server)
    b = await _fresh(pg_server)
    try:
        ca = await db.connect(pg_server.dsn_for(a))
        cb = await db.connect(pg_server.dsn_for(b))
        try:
            await migrations.migrate(ca)
            await migrations.apply_schema(cb)
            described_a = await migrations.describe(ca)
            described_b = await migrations.describe(cb)
        finally:
            await ca.close()
            await cb.close()
        assert len(described_a) > 40
        assert described_a == described_b
    finally:
        await drop_database(pg_server, a)
        await drop_database(pg_server, b)


async def test_every_named_query_prepares(dsn: str) -> None:
    conn = await db.connect(dsn)
    try:
        found = queries.all_queries()
        assert {"jobs.submit", "leases.lease", "maintenance.reap_expired", "ratelimit.take"} <= set(
            found
        )
        for name, sql in found.items():
            if name.startswith("migrations."):
                continue
            try:
                await conn.prepare(sql)
            except Exception as exc:
                raise AssertionError(f"query {name} does not prepare: {exc}") from exc
    finally:
        await conn.close()
