"""Leader election: exactly one reaper acts at a time.

An `Elector` makes one attempt to take or extend a lease; `Leadership`
calls it in a loop and answers `is_leader` from a local deadline, so a
leader that cannot renew (database or apiserver unreachable, process
paused) stops acting *before* anyone else may take over.

Timing, for a configured lease period L (`lease_seconds`):
- followers retry every `retry_period(L)` (L / 10, between 0.1 and 2 s);
- the backend records a shorter hold (`hold_seconds`): L minus one retry
  period in Postgres (a follower sees expiry at most one retry late), L
  minus two in a Kubernetes Lease (followers also learn of a renewal up to
  one retry late, since they time it on their own clock). So a killed
  leader is replaced within L; one that stops cleanly releases the lease
  and is replaced within one retry period;
- the leader renews every third of the hold and trusts its leadership for
  `RENEW_DEADLINE` of the hold after the start of its last successful
  renewal; a renewal that finds another holder ends it at once.

Electors: `PostgresElector`, a row with an expiry on the database clock
(PgBouncer-safe, unlike session advisory locks); `KubernetesElector` (in
`kube_lease`), a coordination.k8s.io/v1 Lease; `NoElection`, always leader.
Whatever happens here, reaping stays correct with two leaders, because
every reaper update is compare-and-set; election only avoids wasted work.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Protocol

from jobqueue import errors
from jobqueue.db import Executor, leaders
from jobqueue.observability.logging import Logger
from jobqueue.process.service import Service, run_forever

# A leader trusts its lease for this fraction of the duration after the start
# of its last successful renewal: the rest absorbs clock-rate drift and the
# time a follower needs to notice expiry.
RENEW_DEADLINE = 0.8


def retry_period(lease_seconds: float) -> float:
    """How often a follower tries to take the lease."""
    return min(2.0, max(0.1, lease_seconds / 10))


def candidate_id() -> str:
    """Unique per process: host (the pod name on Kubernetes), pid, randomness."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class Elector(Protocol):
    identity: str
    lease_seconds: float  # the period L: a dead leader is replaced within it
    hold_seconds: float  # what the backend records (see the module docstring)

    async def try_acquire(self) -> bool:
        """Take or renew the lease; True if we hold it now. Raises
        JobQueueError when the backend cannot be reached."""
        ...

    async def release(self) -> bool:
        """Give the lease up now (clean stop) if we hold it; True if we did.
        A no-op for anyone else, so it is safe to call without knowing."""
        ...

    def describe(self) -> dict[str, object]:
        """What to log about the current holder."""
        ...


class PostgresElector:
    def __init__(
        self, conn: Executor, *, name: str, identity: str, lease_seconds: float
    ) -> None:
        self.conn = conn
        self.name = name
        self.identity = identity
        self.lease_seconds = lease_seconds
        self.hold_seconds = lease_seconds - retry_period(lease_seconds)
        self.last: leaders.LeaderTerm | None = None

    async def try_acquire(self) -> bool:
        self.last = await leaders.acquire_or_renew(
            self.conn, name=self.name, candidate=self.identity, lease_seconds=self.hold_seconds
        )
        return self.last.holder == self.identity

    async def release(self) -> bool:
        return await leaders.release(self.conn, name=self.name, candidate=self.identity)

    def describe(self) -> dict[str, object]:
        if self.last is None:
            return {"election": "postgres", "lease": self.name}
        return {"election": "postgres", "lease": self.name, "holder": self.last.holder,
                "transitions": self.last.transitions}


class NoElection:
    """For a single reaper by construction (tests, `jobqueue dev`)."""

    def __init__(self, identity: str) -> None:
        self.identity = identity
        self.lease_seconds = self.hold_seconds = 3600.0

    async def try_acquire(self) -> bool:
        return True

    async def release(self) -> bool:
        return False

    def describe(self) -> dict[str, object]:
        return {"election": "none"}


class Leadership(Service[bool]):
    """Runs an elector; `is_leader` is true only while the lease surely holds.

    A pass is one attempt to take or renew; it never raises for an
    unreachable backend (it keeps what it had until the deadline passes),
    so `run_forever` only paces it. `clock` is monotonic seconds, for tests.
    """

    name = "leadership"
    component = "reaper"
    retry_on = ()

    def __init__(
        self, elector: Elector, *, log: Logger, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.elector = elector
        self.log = log
        self.renew_every = elector.hold_seconds / 3
        self.retry_every = retry_period(elector.lease_seconds)
        self._clock = clock
        self._valid_until = 0.0
        self._began = 0.0  # when the last attempt started
        self._announced = False  # what we last logged: leader or not
        self._watchers: list[asyncio.Event] = []
        self.transitions = 0  # times this process became leader

    @property
    def is_leader(self) -> bool:
        return self._clock() < self._valid_until

    def changes(self) -> asyncio.Event:
        """A new event, set at every change of leadership from now on."""
        event = asyncio.Event()
        self._watchers.append(event)
        return event

    def _set(self, leading: bool, valid_until: float) -> None:
        was = self._announced
        self._valid_until = valid_until if leading else 0.0
        self._announced = leading
        if leading and not was:
            self.transitions += 1
            self.log.info("became leader", identity=self.elector.identity,
                          **self.elector.describe())
        elif was and not leading:
            self.log.warning("lost leadership; stopped acting",
                             identity=self.elector.identity, **self.elector.describe())
        else:
            return
        for event in self._watchers:
            event.set()

    async def run_once(self) -> bool:
        """One attempt; whether we lead now."""
        if self._announced and not self.is_leader:
            self._set(False, 0.0)  # the renew deadline passed unrenewed
        hold = self.elector.hold_seconds
        self._began = began = self._clock()
        try:
            async with asyncio.timeout(hold * RENEW_DEADLINE / 2):
                leading = await self.elector.try_acquire()
            self._set(leading, began + hold * RENEW_DEADLINE)
        except (errors.JobQueueError, TimeoutError) as exc:
            # Unknown: keep what we had until its deadline passes.
            self.log.warning("leader election attempt failed", error=str(exc)
                             or type(exc).__name__)
            if not self.is_leader:
                self._set(False, 0.0)
        return self.is_leader

    def delay(self, leading: bool) -> float:
        pause = self.renew_every if leading else self.retry_every
        return max(0.0, self._began + pause - self._clock())

    async def run(self) -> None:
        """Until cancelled; then release the lease if held."""
        try:
            await run_forever(self, log=self.log)
        finally:
            self._valid_until = 0.0
            self._announced = False
            # Whatever we believe: a stop can land while an acquire is on its
            # way, leaving the lease ours on the server but not yet here; kept,
            # it would hold the next leader off for a whole lease period.
            await self._release()

    async def _release(self) -> None:
        try:
            async with asyncio.timeout(3):
                released = await self.elector.release()
            if released:
                self.log.info("released leadership", identity=self.elector.identity)
        except (errors.JobQueueError, TimeoutError) as exc:
            self.log.warning("could not release leadership; it will expire",
                             error=str(exc) or type(exc).__name__)
