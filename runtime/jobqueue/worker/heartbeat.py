"""The worker's heartbeat: every held lease extended in one statement.

It runs at most every third of the lease duration (settings enforce it):
closer to the lease, one slow round trip would let live jobs expire and run
twice (pgqueuer #430). A lease the database no longer extends is reported
to `on_lost`; judging it is the worker's job, since the answer may race a
completion that settled meanwhile. A failed statement is retried at the
next beat: the leases have two more beats of margin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Counter

from jobqueue import db, errors
from jobqueue.db import leases
from jobqueue.models import JobId, LeaseToken
from jobqueue.worker.handlers import Logger

HeldLeases = Sequence[tuple[JobId, LeaseToken]]


@dataclass(frozen=True, slots=True)
class Beat:
    extended: int
    not_extended: list[tuple[JobId, LeaseToken]]


class Heartbeat:
    def __init__(
        self,
        *,
        pool: db.Pool,
        every: float,
        lease_seconds: float,
        held: Callable[[], HeldLeases],
        on_lost: Callable[[JobId, LeaseToken], None],
        log: Logger,
        db_errors: Counter,
    ) -> None:
        self._pool = pool
        self.every = every
        self._lease_seconds = lease_seconds
        self._held = held
        self._on_lost = on_lost
        self._log = log
        self._db_errors = db_errors

    async def run_once(self) -> Beat | None:
        """One beat; None when nothing is held or the database did not answer."""
        snapshot = list(self._held())
        if not snapshot:
            return None
        try:
            still = await leases.heartbeat(self._pool, held=snapshot,
                                           lease_seconds=self._lease_seconds)
        except errors.DatabaseUnavailable as exc:
            self._db_errors.inc()
            self._log.warning("heartbeat failed, will retry", error=str(exc),
                              leases=len(snapshot))
            return None
        lost = [(jid, token) for jid, token in snapshot if jid not in still]
        for jid, token in lost:
            self._on_lost(jid, token)
        return Beat(extended=len(still), not_extended=lost)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            await self.run_once()
