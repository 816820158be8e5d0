"""run_forever and WhileLeader on a real event loop, stepped without sleeping:
each service's `wait` records the pause it was asked for and returns."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from jobqueue import errors
from jobqueue.observability import logging as obslog
from jobqueue.process.service import Service, WhileLeader, run_forever


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Scripted(Service[int]):
    """Raises the scripted exceptions in turn, then returns the pass number;
    stops the loop (CancelledError) after `passes` waits."""

    component = "unit-test"
    interval = 2.0
    retry_base_seconds = 0.2
    retry_cap_seconds = 0.8

    def __init__(self, name: str, script: list[BaseException | None], passes: int) -> None:
        self.name = name
        self.script = list(script)
        self.passes = passes
        self.calls = 0
        self.pauses: list[float] = []

    async def run_once(self) -> int:
        self.calls += 1
        step = self.script.pop(0) if self.script else None
        if step is not None:
            raise step
        return self.calls

    def delay(self, result: int) -> float:
        return 0.0 if result % 2 == 0 else self.interval  # even passes "had more"

    async def wait(self, seconds: float) -> None:
        self.pauses.append(seconds)
        if len(self.pauses) >= self.passes:
            raise asyncio.CancelledError


async def test_failed_passes_back_off_are_counted_and_logged_once() -> None:
    down = errors.DatabaseUnavailable("database unavailable: refused")
    svc = Scripted("unit-backoff", [down, down, down, None], passes=6)
    before_db = counter("database_errors_total", component="unit-test")
    before_svc = counter("service_errors_total", service="unit-backoff")
    with capture_logs() as logs, pytest.raises(asyncio.CancelledError):
        await run_forever(svc, log=obslog.get_logger("test"))
    assert counter("database_errors_total", component="unit-test") == before_db + 3
    assert counter("service_errors_total", service="unit-backoff") == before_svc + 3
    retries, after = svc.pauses[:3], svc.pauses[3:]
    # Never zero (no spinning on a dead socket), never past the cap.
    assert all(0.1 <= p <= 0.8 for p in retries)
    # Pass 4 succeeded (even: "more", go at once), 5 did not, 6 did again.
    assert after == [0.0, 2.0, 0.0]
    events = [(e["log_level"], e["event"]) for e in logs]
    assert events.count(("warning", "service failed, will retry")) == 1
    assert events.count(("info", "service recovered")) == 1
    assert all(e.get("service") == "unit-backoff" for e in logs)


async def test_an_error_it_may_not_retry_ends_the_loop() -> None:
    svc = Scripted("unit-fatal", [RuntimeError("bug")], passes=10)
    with pytest.raises(RuntimeError, match="bug"):
        await run_forever(svc, log=obslog.get_logger("test"))
    assert svc.calls == 1 and svc.pauses == []


async def test_a_backoff_is_reset_by_a_good_pass() -> None:
    down = errors.DatabaseUnavailable("down")
    svc = Scripted("unit-reset", [down, down, down, down, None, down], passes=6)
    svc.retry_base_seconds, svc.retry_cap_seconds = 1.0, 100.0
    with pytest.raises(asyncio.CancelledError):
        await run_forever(svc, log=obslog.get_logger("test"))
    # Failures 1-4 grow the ceiling (1, 2, 4, 8 s); after the good pass the
    # next failure starts again below the first ceiling plus its floor.
    assert svc.pauses[4] == 2.0  # pass 5 succeeded (odd: the interval)
    assert 0.5 <= svc.pauses[5] < 1.5


class Flag:
    """A leadership that the test turns on and off."""

    def __init__(self) -> None:
        self.is_leader = False
        self.events: list[asyncio.Event] = []

    def changes(self) -> asyncio.Event:
        self.events.append(asyncio.Event())
        return self.events[-1]

    def change(self, leading: bool) -> None:
        self.is_leader = leading
        for event in self.events:
            event.set()


class Counting(Service[int]):
    name = "unit-counting"
    interval = 3.0

    def __init__(self) -> None:
        self.passes = 0
        self.standbys = 0

    async def run_once(self) -> int:
        self.passes += 1
        return self.passes

    def delay(self, result: int) -> float:
        return 0.0

    def standby(self) -> None:
        self.standbys += 1


async def test_while_leader_passes_only_while_leading() -> None:
    inner = Counting()
    flag = Flag()
    gated = WhileLeader(inner, flag)
    assert await gated.run_once() is None
    assert gated.delay(None) == 3.0
    assert (inner.passes, inner.standbys) == (0, 1)
    flag.change(True)
    assert await gated.run_once() == 1
    assert gated.delay(1) == 0.0  # the inner service's own pacing
    assert gated.name == "unit-counting"


async def test_while_leader_wakes_from_its_wait_when_leadership_changes() -> None:
    flag = Flag()
    gated = WhileLeader(Counting(), flag)
    waiting = asyncio.create_task(gated.wait(60))
    await asyncio.sleep(0)
    assert not waiting.done()
    flag.change(True)
    await asyncio.wait_for(waiting, 5)  # long before the 60 s
    # A change seen once is not seen again: the next wait lasts its time.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(gated.wait(60), 0.05)


async def test_until_ends_the_loop_after_a_wait_and_no_component_counts_no_database_error(
) -> None:
    class KubeDown(Exception):
        pass

    svc = Scripted("unit-until", [KubeDown("409"), None, None], passes=100)
    svc.component = None
    svc.retry_on = (KubeDown,)
    before = counter("database_errors_total", component="service")
    await run_forever(svc, log=obslog.get_logger("test"), until=lambda: len(svc.pauses) >= 3)
    assert svc.calls == 3 and len(svc.pauses) == 3
    assert counter("service_errors_total", service="unit-until") >= 1
    assert counter("database_errors_total", component="service") == before
