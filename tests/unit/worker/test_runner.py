"""One attempt's outcome for every way a handler can end (no database)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from jobqueue.models import WorkerId
from jobqueue.observability import logging as obslog
from jobqueue.worker import handlers
from jobqueue.worker.handlers import JobContext, PermanentFailure, Registry
from jobqueue.worker.runner import Failed, RetryPolicy, Runner, Succeeded
from tests.factories import lease


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    h = handlers.handler

    @h("async-ok", registry=reg)
    async def async_ok(ctx: JobContext, data: Any) -> Any:
        return {"job": str(ctx.job_id), "attempt": ctx.attempt, "echo": data}

    @h("sync-ok", registry=reg)
    def sync_ok(ctx: JobContext, data: Any) -> Any:
        return {"thread": threading.current_thread().name}

    @h("boom", registry=reg)
    async def boom(ctx: JobContext, data: Any) -> Any:
        raise RuntimeError("disk full")

    @h("bad-input", registry=reg)
    def bad_input(ctx: JobContext, data: Any) -> Any:
        raise PermanentFailure("width must be positive")

    @h("slow", registry=reg)
    async def slow(ctx: JobContext, data: Any) -> Any:
        await asyncio.sleep(30)

    @h("own-timeout", registry=reg)
    async def own_timeout(ctx: JobContext, data: Any) -> Any:
        raise TimeoutError("upstream took too long")

    @h("not-json", registry=reg)
    async def not_json(ctx: JobContext, data: Any) -> Any:
        return {"x": {1, 2}}

    @h("nan", registry=reg)
    async def nan(ctx: JobContext, data: Any) -> Any:
        return {"x": float("nan")}

    @h("exits", registry=reg)
    def exits(ctx: JobContext, data: Any) -> Any:
        raise SystemExit(3)

    return reg


@pytest.fixture
def runner(registry: Registry) -> Iterator[Runner]:
    pool = ThreadPoolExecutor(2, thread_name_prefix="handler")
    try:
        yield Runner(
            registry=registry, worker_id=WorkerId("w-1"),
            retry=RetryPolicy(base_seconds=1.0, cap_seconds=60.0), threads=pool,
            log=obslog.get_logger("test"),
        )
    finally:
        pool.shutdown(wait=False)


async def test_async_handler_gets_context_and_data(runner: Runner) -> None:
    le = lease("async-ok", {"a": 1}, attempt=2)
    out = await runner.run(le)
    assert out == Succeeded({"job": str(le.job_id), "attempt": 2, "echo": {"a": 1}})


async def test_sync_handler_runs_in_a_thread(runner: Runner) -> None:
    out = await runner.run(lease("sync-ok"))
    assert isinstance(out, Succeeded)
    assert out.result["thread"].startswith("handler")


async def test_unknown_type_is_a_permanent_failure_naming_known_types(runner: Runner) -> None:
    out = await runner.run(lease("resize-image"))
    assert isinstance(out, Failed) and out.permanent
    assert "no handler for job type 'resize-image'" in out.error
    assert "async-ok" in out.error


async def test_exception_retries_with_backoff_within_the_ceiling(runner: Runner) -> None:
    out = await runner.run(lease("boom", attempt=3))
    assert isinstance(out, Failed) and not out.permanent
    assert out.error.startswith("RuntimeError: disk full")
    assert "in boom" in out.error  # the traceback names the frame
    assert 0.0 <= out.retry_in_seconds < 4.0


async def test_permanent_failure_goes_to_the_dlq(runner: Runner) -> None:
    out = await runner.run(lease("bad-input"))
    assert isinstance(out, Failed) and out.permanent
    assert "width must be positive" in out.error


async def test_timeout_fails_the_attempt(runner: Runner) -> None:
    out = await runner.run(lease("slow", timeout=1))
    assert isinstance(out, Failed) and not out.permanent
    assert out.error == "timeout: the handler ran longer than 1 s"


async def test_a_handlers_own_timeout_error_is_not_called_a_timeout(runner: Runner) -> None:
    out = await runner.run(lease("own-timeout"))
    assert isinstance(out, Failed)
    assert out.error.startswith("TimeoutError: upstream took too long")


@pytest.mark.parametrize("type", ["not-json", "nan"])
async def test_results_that_are_not_json_fail_permanently(runner: Runner, type: str) -> None:
    out = await runner.run(lease(type))
    assert isinstance(out, Failed) and out.permanent
    assert "not JSON" in out.error


async def test_sys_exit_in_a_handler_fails_the_job_not_the_worker(runner: Runner) -> None:
    out = await runner.run(lease("exits"))
    assert isinstance(out, Failed) and not out.permanent
    assert out.error.startswith("SystemExit: 3")


async def test_cancellation_propagates(runner: Runner) -> None:
    task = asyncio.create_task(runner.run(lease("slow")))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_builtin_sleep_validates_its_input() -> None:
    reg = handlers.load("")
    pool = ThreadPoolExecutor(1)
    r = Runner(registry=reg, worker_id=WorkerId("w"), retry=RetryPolicy(1.0, 2.0),
               threads=pool, log=obslog.get_logger("test"))
    for bad in [{"seconds": -1}, {"seconds": "5"}, {"seconds": True}, [], {"seconds": 1e9}]:
        out = await r.run(lease("sleep", bad))
        assert isinstance(out, Failed) and out.permanent, bad
    assert await r.run(lease("sleep", {"seconds": 0.01})) == Succeeded({"slept": 0.01})
    assert await r.run(lease("echo", {"k": [1, 2]})) == Succeeded({"k": [1, 2]})
    pool.shutdown()
