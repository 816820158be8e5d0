"""Every error the API answers is JSON `{"error": code, "detail": message}`.

`jobqueue.errors` map to status codes here, in one table; nothing else in
the API chooses an error status. Unexpected exceptions become a 500 with no
stack trace in the body (the log has it); database trouble of any kind
becomes 503 with Retry-After, since it passes by itself.
"""

from __future__ import annotations

import math
import traceback
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from structlog.typing import FilteringBoundLogger

from jobqueue import errors
from jobqueue.api.routing import RouteTable
from jobqueue.observability import logging as obslog
from jobqueue.observability import metrics


def _log() -> FilteringBoundLogger:
    # Looked up per use: a logger bound at import would keep the logging
    # configuration of import time, not the one the command sets up.
    return obslog.get_logger(__name__)


# Seconds a client should wait before retrying while the database is away.
UNAVAILABLE_RETRY_AFTER = 2


class HttpError(Exception):
    """An answer the API gives on purpose, with its status and code."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})
        if retry_after is not None:
            self.headers["Retry-After"] = retry_after_header(retry_after)


def unauthorized(detail: str) -> HttpError:
    return HttpError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def forbidden(detail: str) -> HttpError:
    return HttpError(403, "forbidden", detail)


def too_large(detail: str) -> HttpError:
    return HttpError(413, "payload_too_large", detail)


def rate_limited(retry_after: float) -> HttpError:
    return HttpError(
        429,
        "rate_limited",
        f"request rate limit exceeded; retry in {retry_after:.2f}s",
        retry_after=retry_after,
    )


def retry_after_header(seconds: float) -> str:
    """Whole seconds, rounded up: `Retry-After: 0` would invite a hot loop."""
    return str(max(1, math.ceil(seconds)))


def body(code: str, detail: str, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, **extra}


def from_domain(exc: errors.JobQueueError) -> HttpError:
    """The one table from domain errors to answers."""
    match exc:
        case errors.NotFound():
            return HttpError(404, "not_found", str(exc))
        case errors.IdempotencyConflict():
            return HttpError(409, "idempotency_conflict", str(exc))
        case errors.InvalidTransition():
            return HttpError(409, "invalid_transition", str(exc))
        case errors.QuotaExceeded():
            return HttpError(429, "quota_exceeded", str(exc), retry_after=exc.retry_after)
        case errors.TenantDisabled():
            return HttpError(403, "tenant_disabled", str(exc) or "tenant is disabled")
        case errors.InvalidInput():
            return HttpError(422, "invalid_input", str(exc))
        case errors.DatabaseUnavailable():
            # The driver's message may name hosts and ports; keep it in the log.
            return unavailable()
        case _:
            return HttpError(500, "internal", "internal error")


def unavailable() -> HttpError:
    return HttpError(
        503,
        "unavailable",
        "the database is unavailable; retry later",
        retry_after=UNAVAILABLE_RETRY_AFTER,
    )


def response(err: HttpError, **extra: Any) -> JSONResponse:
    return JSONResponse(body(err.code, err.detail, **extra), err.status, headers=err.headers)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HttpError)
    return response(exc)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.JobQueueError)
    err = from_domain(exc)
    if isinstance(exc, errors.DatabaseUnavailable):
        metrics.DB_ERRORS.labels("api").inc()
    if isinstance(exc, errors.DatabaseRefused):
        # Wrong credentials or a schema the code does not expect: a person
        # must look, so it is logged like a bug, stack and driver error included.
        log_unexpected(request.url.path, exc)
    elif err.status >= 500:
        _log().warning(
            "request failed", path=request.url.path, error=type(exc).__name__, reason=str(exc)
        )
    return response(err)


async def _timeout(request: Request, exc: Exception) -> JSONResponse:
    metrics.DB_ERRORS.labels("api").inc()
    _log().warning("database call timed out", path=request.url.path)
    return response(unavailable())


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    first = fields[0] if fields else {"loc": [], "msg": "invalid request"}
    detail = f"{'.'.join(first['loc'])}: {first['msg']}" if first["loc"] else str(first["msg"])
    return JSONResponse(body("validation_error", detail, fields=fields), 422)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's answer to a body it cannot decode; to clients that is
        # one more invalid body.
        return JSONResponse(body("validation_error", str(exc.detail)), 422)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names only the methods of the first route whose path
        # matched, and FastAPI makes one route per method (GET and POST /v1/jobs).
        table: RouteTable = request.app.state.route_table
        headers["Allow"] = ", ".join(sorted(table.methods(request.url.path)))
    return JSONResponse(body(code, str(exc.detail)), exc.status_code, headers=headers)


def log_unexpected(path: str, exc: BaseException) -> None:
    """A bug: its type, message and stack, but not the frames' locals, which
    may hold API keys, tokens or payloads."""
    stack = "".join(traceback.format_exception(exc))
    _log().error("unhandled error", path=path, error=type(exc).__name__, stack=stack)


def install(app: FastAPI) -> None:
    app.add_exception_handler(HttpError, _api_error)
    app.add_exception_handler(errors.JobQueueError, _domain_error)
    app.add_exception_handler(TimeoutError, _timeout)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    # Anything else is a bug: middleware.Observe answers it (500, JSON).
