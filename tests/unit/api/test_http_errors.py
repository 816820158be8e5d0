"""The one table from domain errors to HTTP answers (pure)."""

from __future__ import annotations

import pytest

from jobqueue import errors
from jobqueue.api import http_errors


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (errors.JobNotFound("job x not found"), 404, "not_found"),
        (errors.TenantNotFound("t"), 404, "not_found"),
        (errors.IdempotencyConflict("k", "j"), 409, "idempotency_conflict"),
        (errors.InvalidTransition("no"), 409, "invalid_transition"),
        (errors.QuotaExceeded("full", retry_after=2.5), 429, "quota_exceeded"),
        (errors.TenantDisabled("off"), 403, "tenant_disabled"),
        (errors.QueueNotFound("q"), 404, "not_found"),
        (errors.InvalidInput("bad"), 422, "invalid_input"),
        (errors.InvalidJob("bad"), 422, "invalid_input"),
        (errors.ConstraintViolation("check"), 422, "invalid_input"),
        (errors.TenantExists("t"), 422, "invalid_input"),
        (errors.DatabaseUnavailable("host db:5432 refused"), 503, "unavailable"),
        (errors.DatabaseRefused("InvalidPasswordError: ..."), 500, "internal"),
        (errors.MigrationConflict("two 0002"), 500, "internal"),
    ],
)
def test_domain_errors_map_to_status_and_code(
    exc: errors.JobQueueError, status: int, code: str
) -> None:
    err = http_errors.from_domain(exc)
    assert (err.status, err.code) == (status, code)
    if status in (429, 503):
        assert int(err.headers["Retry-After"]) >= 1
    if status == 503:
        assert "5432" not in err.detail  # the driver's message stays in the log


def test_retry_after_rounds_up_and_is_never_zero() -> None:
    assert http_errors.retry_after_header(0.001) == "1"
    assert http_errors.retry_after_header(1.2) == "2"
    assert http_errors.retry_after_header(3) == "3"
