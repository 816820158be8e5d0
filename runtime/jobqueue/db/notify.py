"""LISTEN on a channel, on a connection of its own.

A LISTEN lives as long as its session, so it cannot share a pool (and does
not work behind PgBouncer in transaction mode: keep a poll fallback). The
handle says when the connection dies (`wait_closed`), so the caller can
reconnect; it never raises from the notification callback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from jobqueue.db import connect, translate

Callback = Callable[[str], None]


class Listener:
    """One listening connection. Close it with `close()`."""

    def __init__(self, conn: Any, channel: str) -> None:
        self._conn = conn
        self.channel = channel
        self._closed = asyncio.Event()

    def _on_terminated(self, _conn: object) -> None:
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set() or self._conn.is_closed()

    async def wait_closed(self) -> None:
        """Return once the connection is gone (server restart, network, close())."""
        await self._closed.wait()

    @translate
    async def ping(self, *, timeout: float = 5.0) -> None:
        """Round-trip on the listening connection: a half-open socket (a frozen
        server, a silent NAT drop) raises DatabaseUnavailable instead of
        leaving the listener deaf forever."""
        await self._conn.fetchval("SELECT 1", timeout=timeout)

    async def close(self) -> None:
        try:
            await asyncio.wait_for(self._conn.close(), timeout=2)
        except Exception:
            self._conn.terminate()
        self._closed.set()


async def listen(
    dsn: str, channel: str, callback: Callback, *, application_name: str = "jobqueue-listen"
) -> Listener:
    """Connect, LISTEN on `channel` and call `callback(payload)` per notification.

    Raises DatabaseUnavailable when the server cannot be reached.
    """
    conn = await connect(dsn, application_name=application_name)
    handle = Listener(conn, channel)

    def on_notify(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        # A bad callback must not kill the connection's reader.
        with contextlib.suppress(Exception):
            callback(payload)

    try:
        conn.add_termination_listener(handle._on_terminated)
        await _add_listener(conn, channel, on_notify)
    except BaseException:
        conn.terminate()
        raise
    return handle


@translate
async def _add_listener(conn: Any, channel: str, fn: Callable[..., None]) -> None:
    await conn.add_listener(channel, fn)
