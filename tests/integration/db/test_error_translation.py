"""Driver errors become `jobqueue.errors` at the db boundary, named for what
the caller should do, so no caller (the operator included) needs to catch
`Exception` or know asyncpg."""

from __future__ import annotations

import uuid

import pytest

from jobqueue import db, errors
from jobqueue.db import jobs, tenants
from jobqueue.models import NewJob, TenantId
from jobqueue.settings import DatabaseSettings
from jobqueue_operator.databases import Databases
from tests.conftest import PgServer


async def test_a_database_that_does_not_exist_is_refused_not_unavailable(
    pg_server: PgServer,
) -> None:
    missing = pg_server.dsn_for(f"nothing_{uuid.uuid4().hex[:8]}")
    with pytest.raises(errors.DatabaseRefused, match="InvalidCatalogNameError"):
        await db.create_pool(missing, min_size=1, max_size=1)


async def test_the_operator_reports_a_refusal_with_the_url_redacted(pg_server: PgServer) -> None:
    missing = pg_server.dsn_for(f"nothing_{uuid.uuid4().hex[:8]}")
    databases = Databases(DatabaseSettings(), timeout=10, pool_max=1)
    try:
        with pytest.raises(errors.DatabaseRefused) as refused:
            await databases.run(missing, lambda pool: tenants.list_tenants(pool))
    finally:
        await databases.close()
    assert missing not in str(refused.value)


async def test_a_missing_tenant_is_named_by_the_foreign_key(pool: db.Pool) -> None:
    with pytest.raises(errors.TenantNotFound, match="unknown tenant"):
        await jobs.submit(pool, tenant_id=TenantId("ghost"), job=NewJob(type="echo"))
    with pytest.raises(errors.TenantNotFound, match="unknown tenant"):
        await tenants.add_api_key(pool, tenant_id=TenantId("ghost"), key_hash="0" * 64)


@pytest.mark.parametrize(
    ("constraint", "kind"),
    [
        ("jobs_tenant_id_fkey", errors.TenantNotFound),
        ("fair_share_queue_fkey", errors.QueueNotFound),
        ("some_future_fkey", errors.NotFound),
        (None, errors.NotFound),
    ],
)
def test_foreign_keys_map_by_constraint_name(
    constraint: str | None, kind: type[errors.NotFound]
) -> None:
    found = db.missing_row(constraint, "Key (x)=(y) is not present")
    assert type(found) is kind
    assert "Key (x)=(y)" in str(found)
