"""Error answers as exceptions: each `ApiError` is also the matching
`jobqueue.errors` class, so `except errors.JobNotFound` catches a 404."""

from __future__ import annotations

import email.utils
import time

import httpx

from jobqueue import errors


class ApiError(errors.JobQueueError):
    """An error answer: HTTP status, the API's error code and its detail."""

    def __init__(self, status: int, code: str, detail: str, retry_after: float = 0.0) -> None:
        # Not super().__init__: some mixed-in domain errors take other arguments.
        Exception.__init__(self, f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        # Seconds the server asked to wait (Retry-After), 0 when it did not say.
        self.retry_after = retry_after


class Unauthorized(ApiError):
    pass


class Forbidden(ApiError):
    pass


class TenantDisabledError(Forbidden, errors.TenantDisabled):
    pass


class NotFoundError(ApiError, errors.JobNotFound):
    pass


class IdempotencyConflictError(ApiError, errors.IdempotencyConflict):
    key = ""
    existing_job_id: object = None


class InvalidTransitionError(ApiError, errors.InvalidTransition):
    pass


class PayloadTooLarge(ApiError):
    pass


class InvalidRequest(ApiError, errors.InvalidInput):
    pass


class RateLimited(ApiError, errors.QuotaExceeded):
    pass


class Unavailable(ApiError, errors.DatabaseUnavailable):
    """503 after every retry, or the server could not be reached at all."""


_BY_CODE: dict[str, type[ApiError]] = {
    "tenant_disabled": TenantDisabledError,
    "idempotency_conflict": IdempotencyConflictError,
    "invalid_transition": InvalidTransitionError,
}
_BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFoundError,
    409: InvalidTransitionError,
    413: PayloadTooLarge,
    422: InvalidRequest,
    429: RateLimited,
    503: Unavailable,
}


def retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (delta or HTTP date), if the answer has one."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_of(response: httpx.Response) -> ApiError:
    try:
        body = response.json()
        code, detail = str(body["error"]), str(body["detail"])
    except (ValueError, KeyError, TypeError):
        code, detail = "http_error", response.text[:500]
    cls = _BY_CODE.get(code) or _BY_STATUS.get(response.status_code, ApiError)
    return cls(response.status_code, code, detail, retry_after(response) or 0.0)
