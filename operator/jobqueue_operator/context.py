"""What every handler shares, built once at start-up and kept in kopf's memo."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from jobqueue import errors
from jobqueue_operator.databases import Databases, redact
from jobqueue_operator.kube import Kube
from jobqueue_operator.settings import OperatorSettings
from jobqueue_operator.status import DATABASE_UNAVAILABLE, Problem


@dataclass
class QueueMemo:
    """One JobQueue's reconciles and finalizer, in this process.

    `lock` makes a reconcile's database sync and the finalizer take turns,
    and `deleting` stops syncs after the finalizer ran: kopf signals the
    status daemon to stop but runs the deletion handler without waiting
    for a reconcile in flight, which would write the schedules back.
    `url` is the database of the last reconcile: the finalizer still finds
    it when the Secret was deleted first (a namespace being deleted). Memory
    only, since it holds a password; a restart refills it on resume.
    """

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    deleting: bool = False
    url: str | None = None


@dataclass
class Context:
    settings: OperatorSettings
    kube: Kube
    databases: Databases
    # The operator's own database (tenants table); None if not configured.
    dsn: str | None
    # Child uid -> metadata.generation after our last apply: a watch event
    # with a newer generation means someone else changed the child's spec.
    applied_generations: dict[str, int] = field(default_factory=dict)
    # JobQueue uid -> what its reconciles and its finalizer share.
    queues: dict[str, QueueMemo] = field(default_factory=dict)

    def queue(self, uid: str) -> QueueMemo:
        return self.queues.setdefault(uid, QueueMemo())

    async def close(self) -> None:
        await self.databases.close()
        self.kube.close()


def database_problem(exc: errors.JobQueueError, dsn: str | None) -> Problem:
    """A failed database call as a condition, with the URL and password redacted.

    The db layer translated the driver's error: DatabaseUnavailable passes by
    itself; DatabaseRefused (bad password, no such database) needs a person."""
    message = str(exc)
    if dsn:
        message = redact(message, dsn)
    return Problem(DATABASE_UNAVAILABLE, message)
