"""The one LISTEN keeper: a LISTEN connection kept open while the process runs.

`db.notify.listen` gives one connection; `Listener` re-opens it after a
database restart or a network cut (with backoff, through `run_forever`),
probes an idle one so a half-open socket is noticed, and calls
`on_connect` after every (re)connection: notifications sent while it was
down are lost, so whoever relies on them must catch up (the worker leases
once, the API resyncs its watchers). It is never trusted alone: the worker
keeps polling, the API's watchers resync.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from jobqueue import errors
from jobqueue.db import notify
from jobqueue.observability.logging import Logger
from jobqueue.process.service import Service

# The jobs table's statement trigger notifies here (db/functions/jobs_changed.sql).
CHANNEL = "jobqueue_events"
# How often an idle LISTEN connection proves it is still alive.
PING_SECONDS = 15.0


@dataclass(eq=False, kw_only=True)
class Listener(Service[None]):
    """A pass is one connection's life: open, LISTEN, probe until it breaks."""

    dsn: str
    on_event: Callable[[str], None]
    on_connect: Callable[[], None]
    component: str | None
    log: Logger
    application_name: str = "jobqueue-listen"
    channel: str = CHANNEL
    ping_seconds: float = PING_SECONDS
    retry_on: tuple[type[BaseException], ...] = (errors.DatabaseUnavailable, TimeoutError)
    connections: int = field(default=0, init=False)  # opened so far; for logs and tests
    _lost: bool = field(default=False, init=False)

    name = "listener"
    interval = 0.0  # reconnect at once; a refused connect backs off
    retry_base_seconds = 0.2
    retry_cap_seconds = 5.0
    announce_recovery = False  # said at connect time instead, below

    async def run_once(self) -> None:
        handle = await notify.listen(self.dsn, self.channel, self.on_event,
                                     application_name=self.application_name)
        self.connections += 1
        if self._lost:
            self.log.info("LISTEN connection back")
        self._lost = True  # from here on, an end is a loss
        self.on_connect()
        try:
            while not handle.closed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.ping_seconds):
                        await handle.wait_closed()
                if not handle.closed:
                    await handle.ping(timeout=self.ping_seconds)
        except errors.DatabaseUnavailable:
            pass  # the probe found it broken: open a new one
        finally:
            await handle.close()
        self.log.warning("LISTEN connection lost, reconnecting")
