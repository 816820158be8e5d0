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

from jobqueue.db import connect, queries, translate

Callback = Callable[[str], None]
Q = queries.load("notify")

# Per-job events: the jobs trigger sends them only while a connection
# listening here is registered (event_watchers), so nobody pays for them
# while nobody watches.
EVENTS = "jobqueue_events"
# A watcher's registration outlives a missed probe or two, not a dead process.
WATCH_SECONDS = 60.0


class Listener:
    """One listening connection. Close it with `close()`."""

    def __init__(self, conn: Any, channel: str) -> None:
        self._conn = conn
        self.channel = channel
        self.watching = channel == EVENTS
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
        if self.watching:
            await self._conn.execute(Q["watch"], WATCH_SECONDS, timeout=timeout)
        else:
            await self._conn.fetchval("SELECT 1", timeout=timeout)

    async def close(self) -> None:
        if self.watching and not self.closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._conn.execute(Q["unwatch"]), timeout=2)
        try:
            await asyncio.wait_for(self._conn.close(), timeout=2)
        except Exception:
            self._conn.terminate()
        self._closed.set()


async def listen(
    dsn: str, channel: str, callback: Callback, *, application_name: str = "jobqueue-listen"
) -> Listener:
    """Connect, LISTEN on `channel` and call `callback(payload)` per notification.
    On the per-job events channel the connection registers as a watcher
    (renewed by `ping`), so the events are sent at all.

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
        if handle.watching:
            await _watch(conn)
    except BaseException:
        conn.terminate()
        raise
    return handle


@translate
async def _add_listener(conn: Any, channel: str, fn: Callable[..., None]) -> None:
    await conn.add_listener(channel, fn)


@translate
async def _watch(conn: Any) -> None:
    await conn.execute(Q["watch"], WATCH_SECONDS)
