"""What wakes the fetcher: a NOTIFY that its queue has work, a freed slot, a
stop request, or the poll interval passing.

NOTIFYs coalesce into one event, so a burst of submissions costs one lease
attempt, not one per notification. The LISTEN connection is optional
(behind PgBouncer in transaction mode it cannot work) and never trusted
alone: the poll fallback stays on, and after a reconnect the fetcher is
woken once because events may have been missed in between.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

from jobqueue.models import JobId
from jobqueue.process.listen import Listener
from jobqueue.process.service import event_within, run_forever
from jobqueue.worker.handlers import Logger

CHANNEL = "jobqueue_events"
# How often an idle LISTEN connection proves it is still alive.
PING_SECONDS = 15.0
# How the status appears in a payload (JSON text); absent means nothing to do.
_QUEUED = '"queued"'
_CANCELLED = '"cancelled"'


class Wakeup:
    """`on_cancelled(job_id)` hears of every job cancelled anywhere, while
    `watching()` says this worker holds jobs at all: a cancelled job it
    holds is stopped at once instead of at the next heartbeat."""

    def __init__(
        self, *, dsn: str, queue: str, log: Logger,
        on_cancelled: Callable[[JobId], None] | None = None,
        watching: Callable[[], bool] = lambda: False,
    ) -> None:
        self.dsn = dsn
        self.queue = queue
        self.log = log
        self._event = asyncio.Event()
        self._on_cancelled = on_cancelled
        self._watching = watching

    def set(self) -> None:
        self._event.set()

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, timeout: float | None = None) -> bool:
        """True when woken, False when `timeout` passed first."""
        return await event_within(self._event, timeout)

    def on_event(self, payload: str) -> None:
        """A `jobqueue_events` payload: [[job_id, tenant_id, status, queue], ...]."""
        if self._on_cancelled is not None and _CANCELLED in payload and self._watching():
            self._cancelled(payload)
        if _QUEUED not in payload:
            # Every worker hears every status change of every job (each
            # lease, start and ack statement of every worker); only a job
            # becoming queued can matter. A substring test spares parsing
            # the rest, which grows with the number of workers.
            return
        try:
            events = json.loads(payload)
            wanted = any(e[2] == "queued" and e[3] == self.queue for e in events)
        except (ValueError, TypeError, IndexError, KeyError):
            wanted = True  # an event we cannot read: a lease attempt is cheap
        if wanted:
            self._event.set()

    def _cancelled(self, payload: str) -> None:
        assert self._on_cancelled is not None
        try:
            ids = [JobId(uuid.UUID(e[0])) for e in json.loads(payload) if e[2] == "cancelled"]
        except (ValueError, TypeError, IndexError, KeyError):
            return  # the heartbeat finds it lost soon enough
        for job_id in ids:
            self._on_cancelled(job_id)

    def listener(self) -> Listener:
        """The LISTEN keeper that feeds this wake-up; every (re)connection
        wakes the fetcher once, since events may have been missed meanwhile."""
        return Listener(dsn=self.dsn, channel=CHANNEL, on_event=self.on_event,
                        on_connect=self.set, component="worker", log=self.log,
                        ping_seconds=PING_SECONDS)

    async def listen(self) -> None:
        """Keep a LISTEN connection open until cancelled, reconnecting with backoff."""
        await run_forever(self.listener(), log=self.log)
