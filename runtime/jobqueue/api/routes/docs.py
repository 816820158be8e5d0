"""The error answers each route documents in the OpenAPI schema."""

from __future__ import annotations

from typing import Any

from jobqueue.api.schemas import ErrorOut

_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before retrying",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}

_DESCRIPTIONS = {
    400: "a page cursor this API did not make",
    401: "missing, malformed, forged or expired credential",
    403: "tenant disabled, or the admin credential where a tenant is required",
    404: "no such job for this tenant",
    409: "idempotency key reused for a different request, or a state that forbids it",
    413: "payload or batch over the configured limit",
    422: "invalid request",
    429: "rate limit or backlog quota exceeded",
    503: "database unavailable; retry after Retry-After",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {"model": ErrorOut, "description": _DESCRIPTIONS[code]}
        if code in (429, 503):
            entry["headers"] = _RETRY_AFTER
        out[code] = entry
    return out


# Every authenticated job route can answer these.
COMMON = (401, 403, 422, 429, 503)
