"""The db layer: the only code that holds SQL or imports asyncpg.

Functions take an `Executor` (a pool or a connection) first and keyword-only
arguments after; the caller owns the transaction. Driver errors become the
errors of `jobqueue.errors` here, at the boundary.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, Protocol, TypeVar

import asyncpg

from jobqueue import errors, validation
from jobqueue.db import jsontext
from jobqueue.settings import DatabaseSettings

P = ParamSpec("P")
R = TypeVar("R")


class Record(Protocol):
    def __getitem__(self, key: str | int) -> Any: ...
    def get(self, key: str, default: Any = None) -> Any: ...
    def keys(self) -> Any: ...


class Executor(Protocol):
    """What a pool and a connection have in common."""

    async def execute(self, query: str, *args: object, timeout: float | None = None) -> str: ...
    async def fetch(
        self, query: str, *args: object, timeout: float | None = None
    ) -> list[Any]: ...
    async def fetchrow(
        self, query: str, *args: object, timeout: float | None = None
    ) -> Any: ...
    async def fetchval(
        self, query: str, *args: object, column: int = 0, timeout: float | None = None
    ) -> Any: ...


class Pool(Executor, Protocol):
    def acquire(self, *, timeout: float | None = None) -> Any: ...
    async def close(self) -> None: ...
    def terminate(self) -> None: ...
    def get_size(self) -> int: ...
    def get_idle_size(self) -> int: ...


_UNAVAILABLE: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
    # A statement on a connection whose backend was just terminated sometimes
    # meets the protocol mid-way through the server's goodbye (MagicStack/
    # asyncpg#1069): the pool replaces that connection, so it is an outage.
    asyncpg.InternalClientError,
    ConnectionError,
    OSError,
    TimeoutError,
)


# A foreign key names the row that is missing (constraint names as Postgres
# makes them: <table>_<column>_fkey).
_MISSING: dict[str, tuple[type[errors.NotFound], str]] = {
    "jobs_tenant_id_fkey": (errors.TenantNotFound, "unknown tenant"),
    "api_keys_tenant_id_fkey": (errors.TenantNotFound, "unknown tenant"),
    "rate_limits_tenant_id_fkey": (errors.TenantNotFound, "unknown tenant"),
    "fair_share_tenant_id_fkey": (errors.TenantNotFound, "unknown tenant"),
    "schedules_tenant_id_fkey": (errors.TenantNotFound, "unknown tenant"),
    "fair_share_queue_fkey": (errors.QueueNotFound, "unknown queue"),
}


def missing_row(constraint: str | None, detail: str) -> errors.NotFound:
    """The error for a foreign-key violation of `constraint`."""
    cls, what = _MISSING.get(constraint or "", (errors.NotFound, "a referenced row is missing"))
    return cls(f"{what}: {detail}")


def translate(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn driver errors into `jobqueue.errors` at the boundary: nothing
    above the db package sees an asyncpg exception."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except asyncpg.ForeignKeyViolationError as exc:
            raise missing_row(exc.constraint_name, exc.detail or str(exc)) from exc
        except (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError) as exc:
            # The message only: a check's DETAIL lists the failing row,
            # payload included, and errors never carry payloads.
            message = getattr(exc, "message", None) or str(exc).split("\n", 1)[0]
            raise errors.ConstraintViolation(message) from exc
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError) as exc:
            raise errors.StatementConflict(f"{type(exc).__name__}: {exc}") from exc
        except _UNAVAILABLE as exc:
            raise errors.DatabaseUnavailable(
                f"database unavailable: {type(exc).__name__}: {exc}"
            ) from exc
        except (asyncpg.PostgresError, ValueError) as exc:
            # The server refused (credentials, no such database, schema
            # missing), or the URL does not parse: no retry will help.
            raise errors.DatabaseRefused(f"{type(exc).__name__}: {exc}") from exc

    return wrapper


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset that sends nothing.

    asyncpg's default reset (RESET ALL, UNLISTEN *, unlock advisory locks…)
    costs a round trip on every release, which doubled the round trips of
    every pool call. It is not needed here: nothing SETs session state or
    LISTENs on a pooled connection (LISTEN uses its own connection), locks
    are transaction-scoped, and an open transaction is still rolled back by
    the pool before this runs.
    """


def _loads(text: str) -> Any:
    # A value nested deeper than Python's json module decodes (stored before
    # the nesting limit, or by hand) would fail the whole statement: every
    # list, and every lease, that meets the row. It decodes to a marker.
    try:
        return json.loads(text)
    except RecursionError:
        return validation.TOO_DEEP


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("json", "jsonb"):
        await conn.set_type_codec(
            typ, encoder=jsontext.dumps, decoder=_loads, schema="pg_catalog"
        )


@translate
async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    application_name: str = "jobqueue",
    statement_cache_size: int = 256,
    command_timeout: float | None = 60.0,
) -> Pool:
    """A pool whose connections decode json/jsonb to Python values.

    statement_cache_size=0 is the setting for PgBouncer in transaction mode.
    """
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        statement_cache_size=statement_cache_size,
        command_timeout=command_timeout,
        server_settings={"application_name": application_name},
    )
    assert pool is not None
    return pool  # type: ignore[no-any-return]


@translate
async def connect(
    dsn: str, *, application_name: str = "jobqueue", statement_cache_size: int = 256
) -> Any:
    """One connection (LISTEN, migrations, leader locks). Caller closes it."""
    conn = await asyncpg.connect(
        dsn,
        statement_cache_size=statement_cache_size,
        server_settings={"application_name": application_name},
    )
    await _init_connection(conn)
    return conn


async def close_pool(pool: Pool, *, timeout: float) -> None:
    """Close gracefully within `timeout`, else terminate: never raises, so
    shutting down never waits on a database that stopped answering."""
    try:
        await asyncio.wait_for(pool.close(), timeout=timeout)
    except (TimeoutError, asyncpg.PostgresError, *_UNAVAILABLE):
        pool.terminate()


async def open_pool(
    database: DatabaseSettings,
    *,
    application_name: str,
    min_size: int | None = None,
    max_size: int | None = None,
    dsn: str | None = None,
) -> Pool:
    """The pool of every process (API, worker, reaper, CLI, operator): sized
    and configured by `database`, so `statement_cache_size=0` (PgBouncer in
    transaction mode) reaches every connection. `dsn` names another database
    than `database.url` (the operator reads each JobQueue's own)."""
    return await create_pool(
        dsn if dsn is not None else database.dsn(),
        min_size=database.pool_min if min_size is None else min_size,
        max_size=database.pool_max if max_size is None else max_size,
        application_name=application_name[:63],
        statement_cache_size=database.statement_cache_size,
    )


async def open_connection(
    database: DatabaseSettings, *, application_name: str, dsn: str | None = None
) -> Any:
    """One connection configured by `database`, like `open_pool`'s. Caller closes it."""
    return await connect(
        dsn if dsn is not None else database.dsn(),
        application_name=application_name[:63],
        statement_cache_size=database.statement_cache_size,
    )
