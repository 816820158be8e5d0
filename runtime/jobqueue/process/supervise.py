"""Named, supervised tasks: the first that ends stops the process cleanly.

A process is a few long-running tasks (services, a LISTEN keeper, an
election). None is meant to return, so one that ends, failing or not, is a
fault: `supervise` logs which, stops the others and returns exit code 1. A
stop request (SIGTERM) returns 0 after the same orderly stop. Stopping is
`cancel_in_reverse` unless the process brings its own (the worker first
lets running jobs finish).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any

from jobqueue.observability.logging import Logger

Coros = dict[str, Coroutine[Any, Any, object]]
"""A process's side tasks by name, in start order, for `supervise`."""
Tasks = dict[str, "asyncio.Task[Any]"]
Shutdown = Callable[[Tasks], Awaitable[None]]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def on_signals(handler: Callable[[], None], signals: Iterable[signal.Signals] = STOP_SIGNALS,
               ) -> None:
    """Call `handler` on each of `signals`, from the running event loop."""
    loop = asyncio.get_running_loop()
    for sig in signals:
        loop.add_signal_handler(sig, handler)


async def cancel_in_reverse(tasks: Tasks) -> None:
    """Cancel the tasks last-started first, each finished before the next:
    what a later task builds on (an election, a pool) outlives it."""
    for task in reversed(list(tasks.values())):
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def supervise(
    coros: Mapping[str, Coroutine[Any, Any, object]],
    *,
    stop: asyncio.Event,
    log: Logger,
    shutdown: Shutdown = cancel_in_reverse,
) -> int:
    """Run `coros` as named tasks until one ends or `stop` is set; then
    `shutdown(tasks)`. 0 after a requested stop, 1 when a task ended.

    Cancelled itself (an enclosing lifespan ends), it cancels every task
    before passing the cancellation on.
    """
    tasks: Tasks = {name: asyncio.create_task(coro, name=name) for name, coro in coros.items()}
    stopping = asyncio.create_task(stop.wait(), name="stop")
    try:
        await asyncio.wait([*tasks.values(), stopping], return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        await cancel_in_reverse(tasks)
        raise
    finally:
        stopping.cancel()
    code = 0
    for name, task in tasks.items():
        if task.done():
            code = 1
            exc = None if task.cancelled() else task.exception()
            log.error("task ended; stopping", task=name, error=repr(exc), exc_info=exc)
    await shutdown(tasks)
    return code
