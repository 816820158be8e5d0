"""What every benchmark in hack/ needs: a server, fresh databases on it, CPU
time from /proc.

Imported by the scripts next to it (`python hack/bench.py` puts hack/ on
sys.path), never by the package or the tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from jobqueue import db
from jobqueue.db import migrations
from jobqueue.embedded import EmbeddedPostgres


@contextmanager
def server(durable: bool = False) -> Iterator[str]:
    """DATABASE_URL when set (the benchmarks make their own databases there),
    else a throwaway embedded PostgreSQL, fsync off unless `durable`."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield url
        return
    with EmbeddedPostgres(durable=durable) as pg:
        yield pg.dsn


async def fresh_db(server_dsn: str, prefix: str = "bench") -> str:
    """A new, migrated database on the server; returns its DSN."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await db.connect(server_dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    dsn = server_dsn.rsplit("/", 1)[0] + "/" + name
    conn = await db.connect(dsn)
    try:
        await migrations.migrate(conn)
    finally:
        await conn.close()
    return dsn


async def drop_db(server_dsn: str, dsn: str) -> None:
    # A drained database left behind keeps autovacuum busy on our two cores
    # and slows the next section down.
    admin = await db.connect(server_dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {dsn.rsplit('/', 1)[1]} WITH (FORCE)")
    finally:
        await admin.close()


def proc_stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (which may hold spaces)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(*pids: int) -> float:
    """User + system CPU time the processes have used so far (Linux /proc)."""
    # utime and stime are fields 14 and 15 of /proc/PID/stat.
    return sum(int(f[11]) + int(f[12]) for f in map(proc_stat, pids)) / os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(postmaster: int | None) -> float | None:
    """CPU time of the whole local server: the postmaster, its live children,
    and (cutime, cstime) the children it has reaped. None when not local."""
    if postmaster is None:
        return None
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            f = proc_stat(int(entry))
        except OSError:
            continue  # exited meanwhile
        if int(entry) == postmaster:
            total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
        elif int(f[1]) == postmaster:
            total += int(f[11]) + int(f[12])
    return total / os.sysconf("SC_CLK_TCK")


def _parent_postgres(backend: int) -> int | None:
    try:
        parent = int(proc_stat(backend)[1])
        with open(f"/proc/{parent}/cmdline", "rb") as f:
            return parent if b"postgres" in f.read() else None
    except OSError:
        return None


async def find_postmaster(dsn: str) -> int | None:
    """The server's main process, if it runs on this machine and /proc shows it."""
    conn = await db.connect(dsn)
    try:
        return _parent_postgres(await conn.fetchval("SELECT pg_backend_pid()"))
    finally:
        await conn.close()
