"""until_connected against a port where nothing listens (a real refusal)."""

from __future__ import annotations

import asyncio
import socket

from prometheus_client import REGISTRY

from jobqueue import db
from jobqueue.observability import logging as obslog
from jobqueue.process.backoff import Backoff
from jobqueue.process.connect import until_connected


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_retries_while_refused_and_gives_up_on_stop() -> None:
    dsn = f"postgresql://nobody@127.0.0.1:{closed_port()}/nothing"
    stop = asyncio.Event()
    before = REGISTRY.get_sample_value("database_errors_total", {"component": "unit-connect"})
    attempts = 0

    async def open_pool() -> db.Pool:
        nonlocal attempts
        attempts += 1
        if attempts == 3:
            stop.set()
        return await db.create_pool(dsn, min_size=1, max_size=1)

    got = await until_connected(open_pool, stop=stop, component="unit-connect",
                                log=obslog.get_logger("test"),
                                backoff=Backoff(base=0.01, cap=0.02))
    assert got is None and attempts == 3
    after = REGISTRY.get_sample_value("database_errors_total", {"component": "unit-connect"})
    assert after == (before or 0.0) + 3


async def test_returns_what_the_first_good_attempt_opened() -> None:
    async def open_pool() -> str:
        return "pool"

    got = await until_connected(open_pool, stop=asyncio.Event(), component="unit-connect",
                                log=obslog.get_logger("test"))
    assert got == "pool"
