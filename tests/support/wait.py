"""The one polling helper: wait for a condition that real processes, sockets
or the database reach in their own time.

Prefer stepping a service with `run_once()` where one can be stepped; poll
only what runs in another process, thread or connection.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def eventually(
    probe: Callable[[], Awaitable[T]], *, timeout: float = ..., interval: float = ...,
    what: str = ..., ignore: tuple[type[BaseException], ...] = ...,
) -> T: ...
@overload
async def eventually(
    probe: Callable[[], T], *, timeout: float = ..., interval: float = ...,
    what: str = ..., ignore: tuple[type[BaseException], ...] = ...,
) -> T: ...
async def eventually(
    probe: Callable[[], Any],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "condition",
    ignore: tuple[type[BaseException], ...] = (),
) -> Any:
    """Call (and await) `probe` until it returns something truthy; return it.

    An exception in `ignore` counts as not yet; past `timeout` the last
    value or exception is in the AssertionError.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value
            last = value
        except ignore as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:g} s; last: {last!r}")
        await asyncio.sleep(interval)


def eventually_sync(
    probe: Callable[[], T],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """`eventually` for code without an event loop (threads, sync tests)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:g} s; last: {value!r}")
        time.sleep(interval)
