"""Per-queue settings that live in the database: today, the default max_attempts.

The row is the one `jobqueue_lease()` keeps the fair-queueing clock in; it
is made lazily by the first lease or by `configure`, whichever comes first.
Submission reads the default inside its INSERT (db/sql/jobs.sql), so every
API replica and the CLI agree without a cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobqueue import errors
from jobqueue.db import Executor, queries, translate
from jobqueue.models import DEFAULT_MAX_ATTEMPTS

Q = queries.load("queues")

# What a job gets when neither it nor its queue says (the column default too).
FALLBACK_MAX_ATTEMPTS = DEFAULT_MAX_ATTEMPTS


@dataclass(frozen=True, slots=True)
class QueueDefaults:
    queue: str
    # None: the queue has no default of its own; jobs get FALLBACK_MAX_ATTEMPTS.
    default_max_attempts: int | None

    @property
    def max_attempts(self) -> int:
        """What a job submitted without max_attempts gets now."""
        if self.default_max_attempts is None:
            return FALLBACK_MAX_ATTEMPTS
        return self.default_max_attempts


def _check_name(queue: str) -> None:
    # jobs.queue has this bound; a queues row outside it could never match a job.
    if not 1 <= len(queue) <= 63:
        raise errors.InvalidInput(f"queue name must be 1 to 63 characters, not {len(queue)}")


@translate
async def configure(conn: Executor, *, queue: str, default_max_attempts: int | None) -> bool:
    """Set the queue's default max_attempts (None: no default); True if it changed.

    Jobs already submitted keep what they got. Out-of-range values (1..1000)
    raise InvalidInput and change nothing.
    """
    _check_name(queue)
    return await conn.fetchval(Q["configure"], queue, default_max_attempts) is not None


@translate
async def get_defaults(conn: Executor, *, queue: str) -> QueueDefaults:
    """The queue's defaults; a queue without a row has none of its own."""
    r = await conn.fetchrow(Q["get"], queue)
    return QueueDefaults(
        queue=queue, default_max_attempts=None if r is None else r["default_max_attempts"]
    )
