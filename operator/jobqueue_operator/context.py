"""What every handler shares, built once at start-up and kept in kopf's memo."""

from __future__ import annotations

from dataclasses import dataclass, field

from jobqueue import errors
from jobqueue_operator.databases import Databases, redact
from jobqueue_operator.kube import Kube
from jobqueue_operator.settings import OperatorSettings
from jobqueue_operator.status import DATABASE_UNAVAILABLE, Problem


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
