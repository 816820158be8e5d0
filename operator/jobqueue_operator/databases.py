"""Connection pools of the databases the operator talks to, made on first use.

The operator's own database holds the tenants table; a JobQueue may name
another one (its database Secret), which the status timer reads queue depth
from. Every call is bounded by a timeout, so a database that is down or
black-holed becomes `DatabaseUnavailable` in seconds, never a hung handler.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar
from urllib.parse import urlsplit

from jobqueue import db, errors
from jobqueue.settings import DatabaseSettings

T = TypeVar("T")


def redact(message: str, dsn: str) -> str:
    """Remove the URL and its password from an error message before it is shown."""
    password = urlsplit(dsn).password
    message = message.replace(dsn, "<database url>")
    if password:
        message = message.replace(password, "***")
    return message


class Databases:
    """One small pool per database URL, shared by every handler through kopf's memo."""

    def __init__(self, database: DatabaseSettings, *, timeout: float, pool_max: int) -> None:
        # The operator process's database settings: statement_cache_size=0
        # (PgBouncer in transaction mode) holds for every database it reads.
        self._database = database
        self._timeout = timeout
        self._pool_max = pool_max
        self._pools: dict[str, db.Pool] = {}
        self._lock = asyncio.Lock()

    async def run(self, dsn: str, fn: Callable[[db.Pool], Awaitable[T]]) -> T:
        """`fn(pool)` within the timeout; a failure to reach the database raises
        `DatabaseUnavailable`, a refusal `DatabaseRefused`, with the URL redacted."""
        try:
            async with asyncio.timeout(self._timeout):
                pool = await self._pool(dsn)
                return await fn(pool)
        except TimeoutError:
            raise errors.DatabaseUnavailable(
                f"no answer from the database within {self._timeout:g}s"
            ) from None
        except (errors.DatabaseUnavailable, errors.DatabaseRefused) as exc:
            raise type(exc)(redact(str(exc), dsn)) from None

    async def _pool(self, dsn: str) -> db.Pool:
        pool = self._pools.get(dsn)
        if pool is not None:
            return pool
        async with self._lock:
            pool = self._pools.get(dsn)
            if pool is None:
                # min_size=0: an idle JobQueue holds no connection between ticks.
                pool = await db.open_pool(
                    self._database, dsn=dsn, min_size=0, max_size=self._pool_max,
                    application_name="jobqueue-operator",
                )
                self._pools[dsn] = pool
            return pool

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await db.close_pool(pool, timeout=self._timeout)
