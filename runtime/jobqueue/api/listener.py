"""The API's one LISTEN connection, kept alive for as long as the process runs.

`db.notify.listen` gives one connection; this loop re-opens it after a
database restart or a network cut (with backoff), probes it so a half-open
socket is noticed, and tells the hub to `resync` watchers after every
(re)connection, since notifications sent meanwhile are lost.
"""

from __future__ import annotations

import asyncio
import contextlib

from structlog.typing import FilteringBoundLogger

from jobqueue.api.hub import Hub
from jobqueue.db import notify
from jobqueue.observability import logging as obslog


def _log() -> FilteringBoundLogger:
    # Looked up per use: a logger bound at import would keep the logging
    # configuration of import time, not the one the command sets up.
    return obslog.get_logger(__name__)


# The jobs table's statement trigger notifies here (see schema.sql).
CHANNEL = "jobqueue_events"


async def keep_listening(
    dsn: str,
    hub: Hub,
    *,
    retry_seconds: float = 0.5,
    max_retry_seconds: float = 5.0,
    probe_seconds: float = 10.0,
) -> None:
    """Run until cancelled."""
    delay = retry_seconds
    down = False
    while True:
        try:
            handle = await notify.listen(
                dsn, CHANNEL, hub.publish, application_name="jobqueue-api-listen"
            )
        except Exception as exc:  # unavailable, refused credentials, ...: retry, never die
            if not down:
                _log().warning("event listener cannot connect; retrying", error=type(exc).__name__)
            down = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_retry_seconds)
            continue
        if down:
            _log().info("event listener reconnected")
        down = False
        delay = retry_seconds
        hub.resync()
        try:
            while not handle.closed:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(probe_seconds):
                        await handle.wait_closed()
                if not handle.closed:
                    await handle.ping(timeout=probe_seconds)
        except Exception as exc:  # the connection broke; open a new one
            _log().debug("event listener probe failed", error=type(exc).__name__)
        finally:
            await handle.close()
        _log().warning("event listener lost its connection; reconnecting")
        down = True
