"""jobqueue: a multi-tenant job queue on PostgreSQL.

For handler authors: `from jobqueue import handler, JobContext, Retry`; for
API clients: `from jobqueue import Client, AsyncClient`; for applications
that share the database: `jobqueue.enqueue(conn, ...)` inside their own
transaction (see jobqueue.db.enqueue). Names are
loaded on first use, so `import jobqueue` stays cheap for every process.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobqueue.client import AsyncClient, Client
    from jobqueue.db.enqueue import Enqueued, enqueue
    from jobqueue.worker.handlers import JobContext, PermanentFailure, handler
    from jobqueue.worker.retry import Retry

__all__ = [
    "AsyncClient", "Client", "Enqueued", "JobContext", "PermanentFailure", "Retry", "enqueue",
    "handler",
]

_LAZY = {
    "JobContext": "jobqueue.worker.handlers",
    "PermanentFailure": "jobqueue.worker.handlers",
    "handler": "jobqueue.worker.handlers",
    "Client": "jobqueue.client",
    "AsyncClient": "jobqueue.client",
    "Retry": "jobqueue.worker.retry",
    "enqueue": "jobqueue.db.enqueue",
    "Enqueued": "jobqueue.db.enqueue",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jobqueue' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
