"""Schema migrations: numbered DDL files in versions/, applied in order,
once; then the functions and triggers of functions/, each defined in one
file only and run again whenever it could be stale.

Numbered files change tables, indexes and data. A function or trigger has
one definition, its current one, in functions/ (CREATE OR REPLACE, safe to
run again): after any numbered file ran, every definition runs again (a
numbered step may have dropped what a trigger hangs on), and otherwise
each definition whose text differs from the one last applied. A checksum
of each applied definition is kept in schema_functions, so an up-to-date
database does no work. Everything runs in one transaction under a
transaction-scoped advisory lock: two processes migrating at once take
turns and the second finds nothing to do; a failing file leaves the
database as it was.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable

from jobqueue import errors
from jobqueue.db import Executor, queries, translate

Q = queries.load("migrations")
_FILE = re.compile(r"^(\d{4})_(\w+)\.sql$")
_DEFINITION = re.compile(r"^(\w+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Definition:
    """One file of functions/: the current definition of some functions and
    the triggers that call them."""

    name: str
    sql: str = field(repr=False)

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Applied:
    """What one migrate() call ran; falsy when the database was up to date."""

    migrations: list[Migration]
    definitions: list[Definition]

    def __bool__(self) -> bool:
        return bool(self.migrations or self.definitions)


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


def definitions(folder: Traversable | None = None) -> list[Definition]:
    """The files of functions/ in name order, the order they run in: a file
    may rely on the tables and on the files named before it (PL/pgSQL
    bodies are bound at their first call, so only a LANGUAGE sql body or a
    trigger needs what it names to exist already)."""
    folder = folder or resources.files("jobqueue.db").joinpath("functions")
    found = [
        Definition(m.group(1), entry.read_text())
        for entry in folder.iterdir()
        if (m := _DEFINITION.match(entry.name))
    ]
    return sorted(found, key=lambda d: d.name)


@translate
async def migrate(conn: Executor, *, through: int | None = None) -> Applied:
    """Apply what is pending; returns what ran (falsy when up to date).

    `conn` must be a connection (not a pool): the lock and the files share
    its transaction. `through` stops after that numbered file and leaves
    functions/ out: the tables of an older version, for upgrade tests (its
    functions as they then were are not kept anywhere).
    """
    async with conn.transaction():  # type: ignore[attr-defined]
        await conn.execute(Q["lock"])
        await conn.execute(Q["ensure_tables"])
        ran = await _numbered(conn, through)
        if through is not None:
            return Applied(ran, [])
        return Applied(ran, await _definitions(conn, every=bool(ran)))


async def _numbered(conn: Executor, through: int | None) -> list[Migration]:
    done = {r["version"] for r in await conn.fetch(Q["applied"])}
    ran = []
    for mig in available():
        if mig.version in done or (through is not None and mig.version > through):
            continue
        await conn.execute(mig.sql)
        await conn.execute(Q["record"], mig.version, mig.name)
        ran.append(mig)
    return ran


async def _definitions(conn: Executor, *, every: bool) -> list[Definition]:
    current = {r["name"]: r["checksum"] for r in await conn.fetch(Q["current_functions"])}
    ran = []
    for d in definitions():
        if every or current.get(d.name) != d.checksum:
            await conn.execute(d.sql)
            await conn.execute(Q["record_functions"], d.name, d.checksum)
            ran.append(d)
    return ran


@translate
async def functions_applied(conn: Executor) -> bool:
    """True when every definition of this code has been applied (now or
    before a newer one replaced it: an older pod stays ready while a newer
    version rolls out)."""
    if not await conn.fetchval(Q["has_functions_table"]):
        return False
    defs = definitions()
    found = await conn.fetchval(
        Q["count_applied_functions"], [d.name for d in defs], [d.checksum for d in defs]
    )
    return int(found) == len(defs)


@translate
async def describe(conn: Executor) -> list[str]:
    return [r[0] for r in await conn.fetch(Q["describe"])]
