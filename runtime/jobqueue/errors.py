"""One small tree of errors, named for what the caller should do.

Driver errors (asyncpg, OSError) are translated at the db boundary into
these, so nothing above the db package has to know the driver.
"""

from __future__ import annotations


class JobQueueError(Exception):
    """Base of every error this package raises on purpose."""


class DatabaseUnavailable(JobQueueError):
    """The database cannot be reached right now; retry with backoff."""


class StatementConflict(DatabaseUnavailable):
    """The server aborted a statement to break a deadlock or a serialization
    conflict with another transaction. Nothing was changed, and the same
    statement may succeed at once: every caller that retries an outage
    retries this too."""


class DatabaseRefused(JobQueueError):
    """The database answered but refuses to serve: a wrong password, no such
    database, a schema not migrated. Retrying does not help until a person
    fixes the configuration."""


class NotFound(JobQueueError):
    """The thing does not exist, or belongs to another tenant."""


class JobNotFound(NotFound):
    pass


class TenantNotFound(NotFound):
    pass


class QueueNotFound(NotFound):
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


class QuotaExceeded(JobQueueError):
    """A tenant quota refuses the request; retry after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TenantDisabled(JobQueueError):
    pass


class InvalidInput(JobQueueError):
    """Input refused, before SQL or by the database; nothing was changed. The
    caller must change the input: retrying the same never succeeds."""


class InvalidJob(InvalidInput):
    """A job (or a batch of them) the rules of `jobqueue.validation` refuse."""


class ConstraintViolation(InvalidInput):
    """A value a check constraint of the database refused."""


class TenantExists(InvalidInput):
    """A tenant of that id already exists (create, not upsert)."""


class MigrationConflict(JobQueueError):
    """The migration files of this installation contradict each other (two
    share a version): a packaging fault, not the database's."""
