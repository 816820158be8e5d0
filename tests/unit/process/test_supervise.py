"""supervise on a real event loop, with a real SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal

from jobqueue.observability import logging as obslog
from jobqueue.process.supervise import on_signals, supervise

LOG = obslog.get_logger("test")


async def forever(name: str, stopped: list[str]) -> None:
    try:
        await asyncio.get_running_loop().create_future()
    finally:
        stopped.append(name)


async def fails_soon() -> None:
    await asyncio.sleep(0)
    raise RuntimeError("side task broke")


async def test_the_first_task_that_fails_stops_the_rest_last_started_first() -> None:
    stopped: list[str] = []
    code = await supervise(
        {"election": forever("election", stopped), "work": forever("work", stopped),
         "broken": fails_soon()},
        stop=asyncio.Event(), log=LOG,
    )
    assert code == 1
    assert stopped == ["work", "election"]


async def test_a_task_that_returns_is_a_fault_too() -> None:
    async def returns() -> None:
        return None

    stopped: list[str] = []
    code = await supervise({"a": forever("a", stopped), "b": returns()},
                           stop=asyncio.Event(), log=LOG)
    assert code == 1 and stopped == ["a"]


async def test_sigterm_stops_cleanly_with_exit_code_zero() -> None:
    stopped: list[str] = []
    stop = asyncio.Event()
    on_signals(stop.set, [signal.SIGTERM])
    try:
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)
        code = await supervise({"a": forever("a", stopped)}, stop=stop, log=LOG)
    finally:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGTERM)
    assert code == 0 and stopped == ["a"]


async def test_a_custom_shutdown_gets_the_running_tasks() -> None:
    seen: list[str] = []

    async def shutdown(tasks: dict[str, asyncio.Task[object]]) -> None:
        seen.extend(name for name, t in tasks.items() if not t.done())
        for t in tasks.values():
            t.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)

    stop = asyncio.Event()
    stop.set()
    code = await supervise({"x": forever("x", []), "y": forever("y", [])}, stop=stop,
                           log=LOG, shutdown=shutdown)
    assert code == 0 and seen == ["x", "y"]


async def test_cancelling_the_supervisor_cancels_its_tasks() -> None:
    stopped: list[str] = []
    sup = asyncio.create_task(supervise({"a": forever("a", stopped)}, stop=asyncio.Event(),
                                        log=LOG))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    sup.cancel()
    await asyncio.gather(sup, return_exceptions=True)
    assert sup.cancelled() and stopped == ["a"]
