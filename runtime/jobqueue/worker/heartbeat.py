"""The worker's heartbeat: every held lease extended in one statement.

It runs at most every third of the lease duration (settings enforce it):
closer to the lease, one slow round trip would let live jobs expire and run
twice (pgqueuer #430). A lease the database no longer extends is reported
to `on_lost`; judging it is the worker's job, since the answer may race a
completion that settled meanwhile. A failed statement is retried at the
next beat: the leases have two more beats of margin.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from jobqueue import db, errors
from jobqueue.db import leases
from jobqueue.models import JobId, LeaseToken
from jobqueue.process.service import Service, run_forever
from jobqueue.worker.handlers import Logger

HeldLeases = Sequence[tuple[JobId, LeaseToken]]


@dataclass(frozen=True, slots=True)
class Beat:
    extended: int
    not_extended: list[tuple[JobId, LeaseToken]]


@dataclass(eq=False, kw_only=True)
class Heartbeat(Service[Beat | None]):
    """A service (jobqueue.process) whose pass never raises for an outage:
    a failed beat is counted and retried at the next one, `every` seconds on."""

    pool: db.Pool
    every: float
    lease_seconds: float
    held: Callable[[], HeldLeases]
    on_lost: Callable[[JobId, LeaseToken], None]
    log: Logger
    db_errors: Counter

    name = "heartbeat"
    component = "worker"
    retry_on = ()

    def __post_init__(self) -> None:
        self.interval = self.every

    async def run_once(self) -> Beat | None:
        """One beat; None when nothing is held or the database did not answer."""
        snapshot = list(self.held())
        if not snapshot:
            return None
        try:
            still = await leases.heartbeat(self.pool, held=snapshot,
                                           lease_seconds=self.lease_seconds)
        except errors.DatabaseUnavailable as exc:
            self.db_errors.inc()
            self.log.warning("heartbeat failed, will retry", error=str(exc),
                             leases=len(snapshot))
            return None
        lost = [(jid, token) for jid, token in snapshot if jid not in still]
        for jid, token in lost:
            self.on_lost(jid, token)
        return Beat(extended=len(still), not_extended=lost)

    async def run(self) -> None:
        await run_forever(self, log=self.log)
