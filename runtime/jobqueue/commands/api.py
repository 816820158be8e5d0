"""`jobqueue api`: serve the HTTP API with uvicorn until SIGTERM.

Flags override JOBQUEUE_API_* settings. JOBQUEUE_API_JWT_SECRET (32+ bytes)
is required; `jobqueue dev` generates one for its API process.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
from types import FrameType
from typing import Any

import uvicorn

from jobqueue.api.app import create_app
from jobqueue.commands.common import add_logging_flags, configure_logging, log_flags, run_loop
from jobqueue.observability import tracing
from jobqueue.settings import ApiSettings, DatabaseSettings, RuntimeSettings

# Open WebSockets and slow requests get this long after SIGTERM.
GRACEFUL_SHUTDOWN_SECONDS = 10


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("api", help="serve the HTTP API")
    p.add_argument("--host", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port to bind (default: 8000)")
    add_logging_flags(p)
    p.set_defaults(func=run)


class _RedactQueryTokens(logging.Filter):
    """uvicorn logs WebSocket handshakes with their query string, where tokens travel."""

    _TOKEN = re.compile(r"([?&](?:access_)?token=)[^&\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "token=" in message:
            record.msg, record.args = self._TOKEN.sub(r"\1[redacted]", message), None
        return True


def server(settings: ApiSettings, database: DatabaseSettings) -> uvicorn.Server:
    """A uvicorn server for the app; `await server.serve()` runs it."""
    config = uvicorn.Config(
        create_app(settings, database),
        host=settings.host,
        port=settings.port,
        # Our own logging setup stays in force; uvicorn's access log is off
        # because it prints query strings, and WebSocket tokens travel there.
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        server_header=False,
    )
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactQueryTokens) for f in logger.filters):
            logger.addFilter(_RedactQueryTokens())
    return uvicorn.Server(config)


def _exit_quietly(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def run(args: argparse.Namespace) -> int:
    settings = RuntimeSettings(api={"host": args.host, "port": args.port}, log=log_flags(args))
    configure_logging(settings)
    tracing.setup("jobqueue-api", settings.tracing)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again
    # under the handler found at start: this one, so the spans still batched
    # are flushed below and the exit status is 0.
    signal.signal(signal.SIGTERM, _exit_quietly)
    try:
        run_loop(server(settings.api, settings.database).serve())
    finally:
        tracing.shutdown()
    return 0
