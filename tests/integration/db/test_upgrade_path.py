"""The upgrade path: a database at any older version, holding rows, migrates
to exactly the schema of a fresh one, and its rows keep working.

An older version's functions are kept nowhere (functions/ holds only the
current ones), so "a database at version k" is the numbered files up to k
(`migrate(through=k)`), the functions and triggers that version had by name
and signature (STUBS: bodies that do nothing, so what a later step must
drop or replace is there to be dropped or replaced), and rows written as
that version wrote them, in plain SQL; the rest of the migration then runs
as an upgrade runs it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from jobqueue import db
from jobqueue.db import jobs, leases, migrations, queues
from jobqueue.models import NewJob, TenantId, Unique, WorkerId
from tests import factories
from tests.conftest import PgServer, create_database, drop_database

VERSIONS = [m.version for m in migrations.available()]

_LEASE = "gen_random_uuid(), now() + interval '5 minutes', 'w-old', 1"

_NOOP = "LANGUAGE plpgsql AS 'BEGIN RETURN NULL; END'"
_NONE = "LANGUAGE sql AS 'SELECT * FROM jobs WHERE false'"
_STATEMENT = "REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION"
_BOTH = "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT"

# (first version, last version that had it, what it defined); STILL: today.
STILL = 9999
STUBS: list[tuple[int, int, str]] = [
    (1, 5, f"CREATE FUNCTION jobqueue_notify_events() RETURNS trigger {_NOOP};"
           f" CREATE TRIGGER jobs_events_insert AFTER INSERT ON jobs {_STATEMENT}"
           " jobqueue_notify_events();"
           f" CREATE TRIGGER jobs_events_update AFTER UPDATE ON jobs {_BOTH}"
           " EXECUTE FUNCTION jobqueue_notify_events()"),
    (1, 5, "CREATE FUNCTION jobqueue_lease(text, text, integer, double precision)"
           f" RETURNS SETOF jobs {_NONE}"),
    (4, STILL, "CREATE FUNCTION jobqueue_notify_chunked(text, text[]) RETURNS void"
            " LANGUAGE sql AS 'SELECT'"),
    (6, STILL, f"CREATE FUNCTION jobqueue_jobs_changed() RETURNS trigger {_NOOP};"
            f" CREATE TRIGGER jobs_changed_insert AFTER INSERT ON jobs {_STATEMENT}"
            " jobqueue_jobs_changed();"
            f" CREATE TRIGGER jobs_changed_update AFTER UPDATE ON jobs {_BOTH}"
            " EXECUTE FUNCTION jobqueue_jobs_changed();"
            " CREATE TRIGGER jobs_changed_delete AFTER DELETE ON jobs"
            " REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT"
            " EXECUTE FUNCTION jobqueue_jobs_changed()"),
    (6, STILL, f"CREATE FUNCTION jobqueue_tenant_created() RETURNS trigger {_NOOP};"
            " CREATE TRIGGER tenants_counters AFTER INSERT ON tenants"
            " FOR EACH ROW EXECUTE FUNCTION jobqueue_tenant_created();"
            f" CREATE FUNCTION jobqueue_tenant_tightened() RETURNS trigger {_NOOP};"
            " CREATE TRIGGER tenants_tightened AFTER UPDATE ON tenants"
            " FOR EACH ROW EXECUTE FUNCTION jobqueue_tenant_tightened()"),
    (6, STILL, "CREATE FUNCTION jobqueue_lease(text, text, integer, double precision,"
            f" job_status DEFAULT 'running') RETURNS SETOF jobs {_NONE}"),
    (8, STILL, "CREATE FUNCTION jobqueue_submit_unique(uuid, text, text, text, jsonb, smallint,"
            " integer, integer, text, text, timestamptz, jsonb, text, double precision,"
            f" job_status[]) RETURNS SETOF jobs {_NONE}"),
]

# (version that can hold these rows, SQL writing them as it would have).
SEED: list[tuple[int, str]] = [
    (1, "INSERT INTO tenants (id, max_concurrent) VALUES ('acme', 4), ('beta', 5)"),
    (1, "INSERT INTO api_keys (tenant_id, key_hash) VALUES ('acme', 'digest-1')"),
    (1, "INSERT INTO rate_limits (tenant_id, tat) VALUES ('acme', now())"),
    (1, "INSERT INTO queues (name, vclock) VALUES ('mail', 3.5)"),
    (1, "INSERT INTO fair_share (queue, tenant_id, finish_tag) VALUES ('mail', 'acme', 4)"),
    (1, "INSERT INTO leaders (name, holder, expires_at)"
        " VALUES ('reaper', 'r-1', now() + interval '1 minute')"),
    (1, "INSERT INTO jobs (tenant_id, queue, type, idempotency_key)"
        " VALUES ('acme', 'mail', 'echo', 'k-1'), ('acme', 'mail', 'echo', NULL),"
        " ('acme', 'mail', 'echo', NULL), ('beta', 'mail', 'echo', NULL),"
        " ('beta', 'mail', 'echo', NULL)"),
    (1, "INSERT INTO jobs (tenant_id, queue, type, status, lease_token, lease_expires_at,"
        " lease_owner, attempt)"
        f" VALUES ('acme', 'mail', 'echo', 'leased', {_LEASE}),"
        f" ('acme', 'mail', 'echo', 'running', {_LEASE})"),
    (1, "INSERT INTO jobs (tenant_id, queue, type, status, finished_at, errors)"
        " VALUES ('acme', 'mail', 'echo', 'succeeded', now(), '[]'),"
        " ('acme', 'mail', 'echo', 'dlq', now(), '[{\"error\": \"boom\"}]'),"
        " ('acme', 'mail', 'echo', 'cancelled', now(), '[]')"),
    (2, "UPDATE queues SET default_max_attempts = 2 WHERE name = 'mail'"),
    (5, "INSERT INTO auth_failures (key, tat) VALUES ('addr:10.0.0.1', now())"),
    # Version 6's trigger kept these; a long history: 7 taken, 5 freed.
    (6, "INSERT INTO tenant_taken (tenant_id, n) VALUES ('acme', 7), ('beta', 0)"),
    (6, "INSERT INTO tenant_freed (tenant_id, n) VALUES ('acme', 5), ('beta', 0)"),
    (7, "INSERT INTO queue_replicas (queue, replicas, ready_replicas, max_replicas)"
        " VALUES ('mail', 2, 1, 4)"),
    (8, "INSERT INTO jobs (tenant_id, queue, type, unique_key)"
        " VALUES ('beta', 'mail', 'report', 'digest-u')"),
    (9, "UPDATE jobs SET progress = 0.5, progress_note = 'half' WHERE status = 'running'"),
    (11, "INSERT INTO event_watchers (name, expires_at) VALUES ('api-1', now())"),
    (12, "INSERT INTO schedules (tenant_id, name, cron, queue, type, next_fire_at)"
         " VALUES ('acme', 'nightly', '0 3 * * *', 'mail', 'report', now() + interval '1 day')"),
]


@pytest.fixture
async def empty(pg_server: PgServer) -> AsyncIterator[str]:
    name = await create_database(pg_server, "template0")
    try:
        yield pg_server.dsn_for(name)
    finally:
        await drop_database(pg_server, name)


@pytest.fixture
async def fresh_schema(dsn: str) -> list[str]:
    """describe() of a database migrated from nothing by this code."""
    conn = await db.connect(dsn)
    try:
        return await migrations.describe(conn)
    finally:
        await conn.close()


async def _active(conn: db.Executor, tenant: str) -> int:
    return int(await conn.fetchval(
        "SELECT tk.n - fr.n FROM tenant_taken tk JOIN tenant_freed fr USING (tenant_id)"
        " WHERE tenant_id = $1", tenant))


async def _rows_still_work(conn: db.Executor, k: int) -> None:
    """What an upgraded database is used for, on the rows it held."""
    assert await conn.fetchval("SELECT vclock FROM queues WHERE name = 'mail'") == 3.5
    assert await _active(conn, "acme") == 2  # one leased, one running
    assert await _active(conn, "beta") == 0
    acme, beta = TenantId("acme"), TenantId("beta")
    # acme has 2 of its 4 slots free: the lease counts the old active jobs.
    got = await leases.lease(conn, queue="mail", worker_id=WorkerId("w-new"), limit=10,
                             lease_seconds=30)
    by_tenant = sorted(lease.job.tenant_id for lease in got)
    assert by_tenant == [acme, acme] + [beta] * (3 if k >= 8 else 2)
    assert await _active(conn, "acme") == 4
    new = await jobs.submit(conn, tenant_id=acme, job=NewJob(type="echo", queue="mail"))
    assert new.job.max_attempts == (2 if k >= 2 else 5)
    keyed = NewJob(type="echo", queue="mail", idempotency_key="k-new")
    assert not (await jobs.submit(conn, tenant_id=acme, job=keyed)).replayed
    assert (await jobs.submit(conn, tenant_id=acme, job=keyed)).replayed
    once = NewJob(type="report", queue="mail", data={"day": 1}, unique=Unique(keys=("day",)))
    assert not (await jobs.submit(conn, tenant_id=beta, job=once)).duplicate
    assert (await jobs.submit(conn, tenant_id=beta, job=once)).duplicate
    t = await factories.tenant(conn)  # the tenants trigger gives it counters
    assert await _active(conn, t.id) == 0


@pytest.mark.parametrize("k", VERSIONS)
async def test_a_database_at_version_k_with_rows_upgrades_to_the_fresh_schema(
    empty: str, fresh_schema: list[str], k: int
) -> None:
    conn = await db.connect(empty)
    try:
        at_k = await migrations.migrate(conn, through=k)
        assert [m.version for m in at_k.migrations] == [v for v in VERSIONS if v <= k]
        for first, last, sql in STUBS:
            if first <= k <= last:
                await conn.execute(sql)
        for version, sql in SEED:
            if version <= k:
                await conn.execute(sql)

        upgraded = await migrations.migrate(conn)

        assert [m.version for m in upgraded.migrations] == [v for v in VERSIONS if v > k]
        assert [d.name for d in upgraded.definitions] == [
            d.name for d in migrations.definitions()
        ]
        assert await migrations.describe(conn) == fresh_schema
        assert await conn.fetchval("SELECT count(*) FROM jobs") == (11 if k >= 8 else 10)
        await _rows_still_work(conn, k)
    finally:
        await conn.close()


async def test_a_version_1_database_with_jobs_upgrades_in_place(empty: str) -> None:
    """What an upgrade meets: a v1 database in use (a queue row with a moved
    clock, queued jobs). Only the newer files run; rows survive; the new
    column starts empty, so every queue keeps the old default of 5."""
    conn = await db.connect(empty)
    try:
        assert [m.version for m in (await migrations.migrate(conn, through=1)).migrations] == [1]
        t = await conn.fetchval("INSERT INTO tenants (id) VALUES ('acme') RETURNING id")
        # As version 1 inserted them (today's submit needs version 2).
        await conn.execute(
            "INSERT INTO jobs (tenant_id, queue, type)"
            " SELECT $1, 'mail', 'echo' FROM generate_series(1, 4)",
            t,
        )
        # As version 1's lease left one of them and its queue's clock.
        await conn.execute(
            "UPDATE jobs SET status = 'leased', attempt = 1, lease_owner = 'w',"
            " lease_token = gen_random_uuid(), lease_expires_at = now() + interval '30 s',"
            " leased_at = now() WHERE id = (SELECT min(id::text)::uuid FROM jobs)")
        await conn.execute("INSERT INTO queues (name, vclock) VALUES ('mail', 1)")

        upgraded = await migrations.migrate(conn)

        assert [m.version for m in upgraded.migrations] == VERSIONS[1:]
        assert await conn.fetchval("SELECT vclock FROM queues WHERE name = 'mail'") == 1
        # Version 6 counted the job version 1 had leased as active.
        assert await _active(conn, t) == 1
        assert (await queues.get_defaults(conn, queue="mail")).default_max_attempts is None
        page = await jobs.list_jobs(conn, tenant_id=t)
        assert page.total == 4 and {j.max_attempts for j in page.jobs} == {5}
        fresh = await jobs.submit(conn, tenant_id=t, job=NewJob(type="echo", queue="mail"))
        assert fresh.job.max_attempts == 5
        await queues.configure(conn, queue="mail", default_max_attempts=2)
        fresh = await jobs.submit(conn, tenant_id=t, job=NewJob(type="echo", queue="mail"))
        assert fresh.job.max_attempts == 2
    finally:
        await conn.close()
