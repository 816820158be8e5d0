"""The worker's fetcher: one lease for as many jobs as there are free slots.

It leases when a NOTIFY says its queue has work or when the poll interval
passes (always on: LISTEN can be off, e.g. behind PgBouncer, or miss events
while reconnecting). With LISTEN on, a freed slot wakes it only while the
queue may hold more (`hungry`: the last lease filled every free slot, or
found none free), as River's producer does: otherwise every finished job at
light load would cost an empty lease, the priciest statement of all, while
NOTIFY already says when new work arrives. A tenant held back by its
max_concurrent is therefore served again at the next NOTIFY or poll.
Without LISTEN (--poll-only) every freed slot still wakes it: there, that
is the only prompt chance to see new work.

A service (jobqueue.process): `run_forever` paces it and backs off while
the database is away.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from jobqueue import db
from jobqueue.db import leases
from jobqueue.models import Lease, WorkerId
from jobqueue.observability import tracing
from jobqueue.process.service import Service
from jobqueue.worker.holding import Holding
from jobqueue.worker.wakeup import Wakeup


def _set_event() -> asyncio.Event:
    event = asyncio.Event()
    event.set()
    return event


@dataclass(eq=False, kw_only=True)
class Fetcher(Service[int | None]):
    pool: db.Pool
    queue: str
    worker_id: WorkerId
    lease_seconds: float
    poll_seconds: float
    held: Holding
    wake: Wakeup
    begin: Callable[[list[Lease], int], None]
    """Start the handlers of what a lease got (and the lease's start time, ns)."""
    hungry: bool = True
    between_leases: asyncio.Event = field(default_factory=_set_event)
    """Set while no lease is in flight, when cancelling the fetcher loses
    nothing. Inside a lease call the rows are already ours in the database:
    cancelling there would strand them, leased to a process that is gone,
    until they expire and burn an attempt (docs/design.md, invariant 8)."""

    name = "fetcher"
    component = "worker"
    retry_base_seconds = 0.2
    retry_cap_seconds = 5.0

    async def run_once(self) -> int | None:
        """One lease; how many jobs it got, None when no slot was free."""
        free = self.held.free_slots
        self.wake.clear()
        if free <= 0:
            self.hungry = True
            return None
        started = tracing.now_ns()
        self.between_leases.clear()
        try:
            got = await leases.lease(
                self.pool, queue=self.queue, worker_id=self.worker_id, limit=free,
                lease_seconds=self.lease_seconds,
            )
            self.hungry = len(got) >= free
            if got:
                self.begin(got, started)
        finally:
            self.between_leases.set()
        return len(got)

    def delay(self, got: int | None) -> float:
        if got is None:
            return math.inf  # a freed slot or a stop wakes it
        # The queue looks drained: wait for a NOTIFY, a stop or the poll.
        return 0.0 if self.hungry else self.poll_seconds

    async def wait(self, seconds: float) -> None:
        if seconds > 0:
            await self.wake.wait(None if seconds == math.inf else seconds)
