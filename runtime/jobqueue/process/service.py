"""A background service: one pass in `run_once()`, paced by `run_forever`.

`run_once()` does a bounded amount of work and returns what it did (River's
maintenance services have the same shape). `run_forever` is the thin loop
every process uses around it:

- after a pass, it waits `delay(result)` (the interval, or 0 when the pass
  says there is more to do) through `wait`, which a service may override to
  wake early (the reaper wakes when leadership changes);
- a pass that raises one of `retry_on` is counted in
  `database_errors_total{component}` and `service_errors_total{service}`,
  logged once per outage (and once on recovery, not on every retry), and
  retried after a capped, jittered backoff;
- anything else propagates: the task ends and `supervise` stops the process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ClassVar, Generic, Protocol, TypeVar

from jobqueue import errors
from jobqueue.observability import metrics
from jobqueue.observability.logging import Logger
from jobqueue.process.backoff import Backoff

R = TypeVar("R")


class Service(Generic[R]):
    """Subclass and implement `run_once`; the class attributes are defaults."""

    name: str = "service"
    """The task name and the `service` label of `service_errors_total`."""
    component: str | None = "service"
    """The process (api, worker, reaper, ...): the `component` label of
    `database_errors_total`, shared with the process's other database calls;
    None for a service whose failures are not the database's."""
    interval: float = 1.0
    """Seconds between passes."""
    retry_on: tuple[type[BaseException], ...] = (errors.DatabaseUnavailable, TimeoutError)
    """What a failed pass may raise and still be retried."""
    retry_base_seconds: float = 0.5
    retry_cap_seconds: float = 10.0
    announce_recovery: ClassVar[bool] = True
    """Log one line at the first good pass after failures (a service whose
    pass lasts long, like the LISTEN keeper, says so itself, sooner)."""

    async def run_once(self) -> R:
        raise NotImplementedError

    def delay(self, result: R) -> float:
        """Seconds to wait after a pass that returned `result`; 0 goes again at once."""
        return self.interval

    async def wait(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def standby(self) -> None:
        """Called instead of a pass while the service may not act (not leader)."""


def _never() -> bool:
    return False


async def run_forever(
    service: Service[R], *, log: Logger, until: Callable[[], bool] = _never
) -> None:
    """Run `service` pass after pass until cancelled, or until `until()` is
    true after a wait (see the module docstring)."""
    log = log.bind(service=service.name)
    backoff = Backoff(base=service.retry_base_seconds, cap=service.retry_cap_seconds)
    # Labelled children looked up once: a busy service passes often.
    db_errors = None if service.component is None else metrics.DB_ERRORS.labels(
        service.component)
    failed = metrics.SERVICE_ERRORS.labels(service.name)
    while not until():
        try:
            result = await service.run_once()
        except service.retry_on as exc:
            if db_errors is not None:
                db_errors.inc()
            failed.inc()
            pause = backoff.next()
            if backoff.failures == 1:  # one line per outage, not one per retry
                log.warning("service failed, will retry", error=_describe(exc),
                            retry_in=round(pause, 2))
            await service.wait(pause)
            continue
        if backoff.failures:
            if service.announce_recovery:
                log.info("service recovered", failed_passes=backoff.failures)
            backoff.reset()
        await service.wait(service.delay(result))


async def event_within(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait for `event` up to `timeout` seconds: True if it was set in time."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
        return True
    except TimeoutError:
        return False


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class Leader(Protocol):
    """What `WhileLeader` needs of an election (reaper.leader.Leadership)."""

    @property
    def is_leader(self) -> bool: ...

    def changes(self) -> asyncio.Event:
        """A new event, set at every change of leadership from now on; its
        one user clears it."""
        ...


class WhileLeader(Service[R | None]):
    """`service`, passing only while `leader.is_leader` (None when not).

    Its waits end early when leadership changes, so a new leader starts at
    once and a deposed one stops after the pass it is in.
    """

    def __init__(self, service: Service[R], leader: Leader) -> None:
        self.service = service
        self.leader = leader
        self.name = service.name
        self.component = service.component
        self.interval = service.interval
        self.retry_on = service.retry_on
        self.retry_base_seconds = service.retry_base_seconds
        self.retry_cap_seconds = service.retry_cap_seconds
        self._changed = leader.changes()

    async def run_once(self) -> R | None:
        if not self.leader.is_leader:
            self.service.standby()
            return None
        return await self.service.run_once()

    def delay(self, result: R | None) -> float:
        return self.interval if result is None else self.service.delay(result)

    async def wait(self, seconds: float) -> None:
        await event_within(self._changed, seconds)
        self._changed.clear()
