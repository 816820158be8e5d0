"""One small tree of errors, named for what the caller should do.

Driver errors (asyncpg, OSError) are translated at the db boundary into
these, so nothing above the db package has to know the driver.
"""

from __future__ import annotations


class JobQueueError(Exception):
    """Base of every error this package raises on purpose."""


class DatabaseUnavailable(JobQueueError):
    """The database cannot be reached right now; retry with backoff."""


class NotFound(JobQueueError):
    """The thing does not exist, or belongs to another tenant."""


class JobNotFound(NotFound):
    pass


class TenantNotFound(NotFound):
    pass


class IdempotencyConflict(JobQueueError):
    """Same idempotency key, different request."""

    def __init__(self, key: str, existing_job_id: object) -> None:
        super().__init__(
            f"idempotency key {key!r} was already used for a different request "
            f"(job {existing_job_id})"
        )
        self.key = key
        self.existing_job_id = existing_job_id


class InvalidTransition(JobQueueError):
    """The job is not in a state that allows this change."""


class LeaseLost(JobQueueError):
    """The lease token is stale: someone else owns the job now, or it finished."""


class QuotaExceeded(JobQueueError):
    """A tenant quota refuses the request; retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TenantDisabled(JobQueueError):
    pass


class InvalidInput(JobQueueError):
    """Input the database refused (a check constraint); nothing was changed."""
