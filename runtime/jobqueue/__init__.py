"""jobqueue: a multi-tenant job queue on PostgreSQL.

For handler authors: `from jobqueue import handler, JobContext`. Names are
loaded on first use, so `import jobqueue` stays cheap for every process.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jobqueue.worker.handlers import JobContext, PermanentFailure, handler

__all__ = ["JobContext", "PermanentFailure", "handler"]

_LAZY = {
    "JobContext": "jobqueue.worker.handlers",
    "PermanentFailure": "jobqueue.worker.handlers",
    "handler": "jobqueue.worker.handlers",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'jobqueue' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
