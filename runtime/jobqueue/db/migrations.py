"""Schema migrations: numbered .sql files in versions/, applied in order, once.

All pending files run in one transaction under a transaction-scoped
advisory lock, so two processes migrating at once take turns and the second
finds nothing to do; a failing file leaves the database as it was.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable

from jobqueue import errors
from jobqueue.db import Executor, queries, translate

Q = queries.load("migrations")
_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str = field(repr=False)


def available(folder: Traversable | None = None) -> list[Migration]:
    """The migration files in order; `folder` defaults to the package's own."""
    folder = folder or resources.files("jobqueue.db").joinpath("versions")
    found = []
    for entry in folder.iterdir():
        m = _FILE.match(entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text()))
    found.sort(key=lambda mig: mig.version)
    for before, after in itertools.pairwise(found):
        if before.version == after.version:
            # Two branches each added "the next" file: say so, rather than
            # fail half-way with a duplicate key on schema_migrations.
            raise errors.MigrationConflict(
                f"two migrations share version {after.version}: "
                f"{before.version:04d}_{before.name}.sql and {after.version:04d}_{after.name}.sql"
            )
    return found


def schema_sql() -> str:
    return resources.files("jobqueue.db").joinpath("schema.sql").read_text()


@translate
async def migrate(conn: Executor) -> list[Migration]:
    """Apply what is pending; returns what was applied (empty when up to date).

    `conn` must be a connection (not a pool): the lock and the files share
    its transaction.
    """
    async with conn.transaction():  # type: ignore[attr-defined]
        await conn.execute(Q["lock"])
        await conn.execute(Q["ensure_table"])
        done = {r["version"] for r in await conn.fetch(Q["applied"])}
        applied = []
        for mig in available():
            if mig.version in done:
                continue
            await conn.execute(mig.sql)
            await conn.execute(Q["record"], mig.version, mig.name)
            applied.append(mig)
    return applied


@translate
async def apply_schema(conn: Executor) -> None:
    """Create the schema from schema.sql in one go (tests compare the two)."""
    await conn.execute(schema_sql())


@translate
async def describe(conn: Executor) -> list[str]:
    return [r[0] for r in await conn.fetch(Q["describe"])]
