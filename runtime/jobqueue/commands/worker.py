"""`jobqueue worker`: run jobs of one queue until SIGTERM.

Flags override JOBQUEUE_WORKER_* settings; --handlers (or
JOBQUEUE_WORKER_HANDLERS / JOBQUEUE_HANDLERS) names modules whose
`@handler` functions to register, on top of the built-in echo and sleep.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import threading
from typing import Any

from jobqueue.commands.common import (
    add_logging_flags,
    configure_logging,
    flags,
    log_flags,
    run_loop,
)
from jobqueue.observability import metrics, tracing
from jobqueue.settings import DEFAULT_CONCURRENCY, RuntimeSettings
from jobqueue.worker import handlers
from jobqueue.worker.worker import Worker


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("worker", help="run jobs of one queue")
    p.add_argument("--queue", help="queue to serve (default: default)")
    p.add_argument("--concurrency", type=int,
                   help=f"jobs run at once (default: {DEFAULT_CONCURRENCY})")
    p.add_argument("--handlers", help="comma-separated modules with @handler functions")
    p.add_argument("--lease-seconds", type=float, help="job lease duration (default 30)")
    p.add_argument("--heartbeat-seconds", type=float, help="capped at a third of the lease")
    p.add_argument("--poll-seconds", type=float, help="poll interval when no NOTIFY arrives")
    p.add_argument("--grace-seconds", type=float, help="SIGTERM: time for running jobs")
    p.add_argument(
        "--poll-only",
        action="store_true",
        help="no LISTEN (PgBouncer in transaction mode); poll only",
    )
    p.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics on this port")
    add_logging_flags(p)
    p.set_defaults(func=run)


def settings_from(args: argparse.Namespace) -> RuntimeSettings:
    worker = flags(args, "queue", "concurrency", "handlers", "lease_seconds",
                   "heartbeat_seconds", "poll_seconds", "grace_seconds", "metrics_port")
    database = {"listen": False if args.poll_only else None}
    return RuntimeSettings(worker=worker, database=database, log=log_flags(args))


async def serve(worker: Worker) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.request_stop)
    return await worker.run()


def run(args: argparse.Namespace) -> int:
    root = settings_from(args)
    settings, database = root.worker, root.database
    configure_logging(root)
    tracing.setup("jobqueue-worker", root.tracing)
    registry = handlers.load(settings.handlers)
    if settings.metrics_port is not None:
        metrics.serve(settings.metrics_port)
    worker = Worker(dsn=database.dsn(), settings=settings, registry=registry, database=database)
    try:
        code = run_loop(serve(worker))
    finally:
        tracing.shutdown()
    if any(t.name.startswith("handler") and t.is_alive() for t in threading.enumerate()):
        # A sync handler stuck in a blocking call: its job was released, but
        # Python would join its thread at exit and never stop. Leave now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
