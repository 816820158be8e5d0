"""Migrations and schema: idempotent, concurrent-safe, equal to schema.sql,
and every named query prepares against it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from jobqueue import db, errors
from jobqueue.db import jobs, migrations, queries, queues
from jobqueue.models import NewJob
from tests import factories
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


def test_two_files_of_one_version_are_refused_by_name(tmp_path: Path) -> None:
    for name in ("0001_init.sql", "0002_a.sql", "0002_b.sql"):
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(errors.MigrationConflict, match=r"0002_a\.sql and 0002_b\.sql"):
        migrations.available(tmp_path)
    (tmp_path / "0002_b.sql").rename(tmp_path / "0003_b.sql")
    assert [m.version for m in migrations.available(tmp_path)] == [1, 2, 3]


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


async def test_a_version_1_database_with_jobs_upgrades_in_place(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an upgrade meets: a v1 database in use (a queue row with a moved
    clock, queued jobs). Only the newer files run; rows survive; the new
    column starts empty, so every queue keeps the old default of 5."""
    name = await _fresh(pg_server)
    try:
        conn = await db.connect(pg_server.dsn_for(name))
        try:
            every = migrations.available()
            assert [m.version for m in every][:2] == [1, 2]
            monkeypatch.setattr(migrations, "available", lambda: every[:1])
            assert [m.version for m in await migrations.migrate(conn)] == [1]
            t = await factories.tenant(conn)
            # As version 1 inserted them (today's submit needs version 2).
            await conn.execute(
                "INSERT INTO jobs (tenant_id, queue, type)"
                " SELECT $1, 'mail', 'echo' FROM generate_series(1, 4)",
                t.id,
            )
            # As version 1 leased (today's lease needs version 6).
            await conn.execute("SELECT * FROM jobqueue_lease('mail', 'w', 1, 30)")
            clock = await conn.fetchval("SELECT vclock FROM queues WHERE name = 'mail'")
            monkeypatch.setattr(migrations, "available", lambda: every)

            upgraded = await migrations.migrate(conn)

            assert [m.version for m in upgraded] == [m.version for m in every[1:]]
            assert await conn.fetchval("SELECT vclock FROM queues WHERE name = 'mail'") == clock
            # Version 6 counted the job version 1 had leased as active.
            assert await conn.fetchval(
                "SELECT tk.n - fr.n FROM tenant_taken tk JOIN tenant_freed fr USING (tenant_id)"
                " WHERE tenant_id = $1", t.id) == 1
            assert (await queues.get_defaults(conn, queue="mail")).default_max_attempts is None
            page = await jobs.list_jobs(conn, tenant_id=t.id)
            assert page.total == 4 and {j.max_attempts for j in page.jobs} == {5}
            fresh = await jobs.submit(conn, tenant_id=t.id, job=NewJob(type="echo", queue="mail"))
            assert fresh.job.max_attempts == 5
            await queues.configure(conn, queue="mail", default_max_attempts=2)
            fresh = await jobs.submit(conn, tenant_id=t.id, job=NewJob(type="echo", queue="mail"))
            assert fresh.job.max_attempts == 2
        finally:
            await conn.close()
    finally:
        await drop_database(pg_server, name)


async def test_health_reports_ready_only_at_the_newest_schema(pg_server: PgServer) -> None:
    from jobqueue.db import health

    name = await _fresh(pg_server)
    try:
        conn = await db.connect(pg_server.dsn_for(name))
        try:
            assert await health.schema_version(conn) == 0
            assert not await health.ping(conn)
            await migrations.migrate(conn)
            assert await health.schema_version(conn) == migrations.available()[-1].version
            assert await health.ping(conn)
            await conn.execute("DELETE FROM schema_migrations WHERE version = "
                               "(SELECT max(version) FROM schema_migrations)")
            assert not await health.ping(conn)  # one migration behind: not ready
        finally:
            await conn.close()
    finally:
        await drop_database(pg_server, name)
