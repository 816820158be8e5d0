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

# The jobs trigger (db/functions/jobs_changed.sql) sends here, per
# statement, the names of the queues it gave queued jobs and ["cancelled",
# job id] for each held job it cancelled: short payloads, and none for
# leases and acks.
CHANNEL = "jobqueue_ready"
# How often an idle LISTEN connection proves it is still alive.
PING_SECONDS = 15.0


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
        """A `jobqueue_ready` payload: a JSON array of queue names and
        ["cancelled", job id] pairs."""
        try:
            items = json.loads(payload)
            wanted = self.queue in items
            cancelled = [i[1] for i in items if isinstance(i, list) and i[0] == "cancelled"]
        except (ValueError, TypeError, IndexError, KeyError):
            self._event.set()  # an event we cannot read: a lease attempt is cheap
            return
        if wanted:
            self._event.set()
        if cancelled and self._on_cancelled is not None and self._watching():
            self._cancelled(cancelled)

    def _cancelled(self, ids: list[str]) -> None:
        assert self._on_cancelled is not None
        try:
            found = [JobId(uuid.UUID(i)) for i in ids]
        except (ValueError, TypeError, AttributeError):
            return  # the heartbeat finds it lost soon enough
        for job_id in found:
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
