"""Migrations: idempotent, concurrent-safe, functions/ applied once per
change and again after numbered files, readiness, and every named query
prepares against the result. The upgrade path: test_upgrade_path.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobqueue import db, errors
from jobqueue.db import health, migrations, queries
from tests.conftest import PgServer, create_database, drop_database
from tests.support.cli import cli

ORIGINAL_DEFINITIONS = migrations.definitions()


@pytest.fixture
async def empty(pg_server: PgServer) -> AsyncIterator[str]:
    """A database without our schema: its DSN."""
    name = await create_database(pg_server, "template0")
    try:
        yield pg_server.dsn_for(name)
    finally:
        await drop_database(pg_server, name)


async def test_migrations_run_twice_without_error(empty: str) -> None:
    conn = await db.connect(empty)
    try:
        first = await migrations.migrate(conn)
        second = await migrations.migrate(conn)
    finally:
        await conn.close()
    assert [m.version for m in first.migrations] == [m.version for m in migrations.available()]
    assert [d.name for d in first.definitions] == [d.name for d in migrations.definitions()]
    assert not second and second.migrations == [] and second.definitions == []


def test_the_migrate_command_says_what_it_applied(empty: str) -> None:
    first = cli(empty, "migrate")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines == [f"applied {m.version:04d}_{m.name}" for m in migrations.available()] + [
        f"applied functions/{d.name}.sql" for d in migrations.definitions()]
    again = cli(empty, "migrate")
    assert (again.returncode, again.stdout) == (0, "schema is up to date\n")


def test_two_files_of_one_version_are_refused_by_name(tmp_path: Path) -> None:
    for name in ("0001_init.sql", "0002_a.sql", "0002_b.sql"):
        (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(errors.MigrationConflict, match=r"0002_a\.sql and 0002_b\.sql"):
        migrations.available(tmp_path)
    (tmp_path / "0002_b.sql").rename(tmp_path / "0003_b.sql")
    assert [m.version for m in migrations.available(tmp_path)] == [1, 2, 3]


def test_definitions_run_in_name_order(tmp_path: Path) -> None:
    for name in ("b_second.sql", "a_first.sql", "notes.txt"):
        (tmp_path / name).write_text("SELECT 1;")
    assert [d.name for d in migrations.definitions(tmp_path)] == ["a_first", "b_second"]


async def test_concurrent_migrations_apply_each_file_once(empty: str) -> None:
    conns = [await db.connect(empty) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrations.migrate(c) for c in conns))
    finally:
        for c in conns:
            await c.close()
    applied = [m.version for r in results for m in r.migrations]
    assert sorted(applied) == [m.version for m in migrations.available()]
    defined = [d.name for r in results for d in r.definitions]
    assert sorted(defined) == [d.name for d in migrations.definitions()]


def _edited(name: str, marker: str) -> list[migrations.Definition]:
    """This code's definitions, with one function body changed harmlessly."""
    out = []
    for d in ORIGINAL_DEFINITIONS:
        if d.name == name:
            edited = d.sql.replace("BEGIN\n", f"BEGIN\n    -- {marker}\n", 1)
            d = migrations.Definition(d.name, edited)
            assert marker in d.sql
        out.append(d)
    return out


async def _functiondef(conn: db.Executor, name: str) -> str:
    return str(await conn.fetchval(
        "SELECT pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.proname = $1", name))


async def test_a_changed_definition_alone_is_applied_again(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = await db.connect(dsn)
    try:
        assert not await migrations.migrate(conn)  # the template is up to date
        monkeypatch.setattr(migrations, "definitions", lambda: _edited("lease", "edited"))

        applied = await migrations.migrate(conn)

        assert applied.migrations == [] and [d.name for d in applied.definitions] == ["lease"]
        assert "-- edited" in await _functiondef(conn, "jobqueue_lease")
        assert not await migrations.migrate(conn)
        # Both texts stay recorded; the newer is the current one.
        assert await conn.fetchval(
            "SELECT count(*) FROM schema_functions WHERE name = 'lease'") == 2
    finally:
        await conn.close()


async def test_a_numbered_file_makes_every_definition_run_again(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A numbered step may drop what a trigger hangs on (here, the trigger
    itself); the definitions that follow it put it back."""
    every = migrations.available()
    extra = migrations.Migration(
        every[-1].version + 1, "drops_a_trigger", "DROP TRIGGER jobs_changed_insert ON jobs;"
    )
    monkeypatch.setattr(migrations, "available", lambda: [*every, extra])
    conn = await db.connect(dsn)
    try:
        before = await migrations.describe(conn)
        applied = await migrations.migrate(conn)
        assert [m.name for m in applied.migrations] == ["drops_a_trigger"]
        assert [d.name for d in applied.definitions] == [d.name for d in migrations.definitions()]
        assert await migrations.describe(conn) == before
    finally:
        await conn.close()


async def test_a_failing_definition_leaves_the_database_as_it_was(
    dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = [*ORIGINAL_DEFINITIONS, migrations.Definition("zz_broken", "SELECT nope;")]
    monkeypatch.setattr(migrations, "definitions", lambda: broken)
    conn = await db.connect(dsn)
    try:
        before = await conn.fetch("SELECT * FROM schema_functions ORDER BY 1, 2")
        with pytest.raises(errors.JobQueueError):
            await migrations.migrate(conn)
        assert await conn.fetch("SELECT * FROM schema_functions ORDER BY 1, 2") == before
    finally:
        await conn.close()


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


async def test_health_reports_ready_only_at_the_newest_schema(empty: str) -> None:
    conn = await db.connect(empty)
    try:
        assert await health.schema_version(conn) == 0
        assert not await health.ping(conn)
        await migrations.migrate(conn)
        assert await health.schema_version(conn) == migrations.available()[-1].version
        assert await health.ping(conn)
        # A newer release replaced a function: this (older) code stays ready.
        await conn.execute("INSERT INTO schema_functions (name, checksum, applied_at)"
                           " VALUES ('lease', 'newer', now() + interval '1 minute')")
        assert await health.ping(conn)
        # This code's text of one function was never applied: not ready.
        await conn.execute("DELETE FROM schema_functions WHERE name = 'lease'"
                           " AND checksum <> 'newer'")
        assert not await health.ping(conn)
        await migrations.migrate(conn)
        assert await health.ping(conn)
        await conn.execute("DELETE FROM schema_migrations WHERE version = "
                           "(SELECT max(version) FROM schema_migrations)")
        assert not await health.ping(conn)  # one migration behind: not ready
    finally:
        await conn.close()
