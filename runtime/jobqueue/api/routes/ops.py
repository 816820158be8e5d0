"""Probes and metrics: /healthz (alive), /readyz (database reachable), /metrics
(admin only here; the metrics port serves it to Prometheus, see app.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials

from jobqueue import errors
from jobqueue.api import deps, http_errors
from jobqueue.api.deps import RuntimeDep
from jobqueue.api.routes import docs
from jobqueue.api.schemas import StatusOut
from jobqueue.db import health
from jobqueue.observability import metrics

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=StatusOut, summary="The process is alive")
async def healthz() -> StatusOut:
    # No database call: a database outage must not get healthy pods restarted.
    return StatusOut(status="ok")


@router.get(
    "/readyz",
    response_model=StatusOut,
    summary="The database is reachable and migrated",
    responses={
        503: {
            "model": StatusOut,
            "description": "not ready",
            "headers": docs.errors(503)[503]["headers"],
        }
    },
)
async def readyz(rt: RuntimeDep) -> Response:
    try:
        async with rt.deadline():
            migrated = await health.ping(rt.pool)
    except (errors.DatabaseUnavailable, TimeoutError):
        return _not_ready("database unavailable")
    if not migrated:
        return _not_ready("database schema is not migrated")
    return JSONResponse(StatusOut(status="ok").model_dump())


def _not_ready(detail: str) -> Response:
    headers = {"Retry-After": http_errors.retry_after_header(http_errors.UNAVAILABLE_RETRY_AFTER)}
    body = StatusOut(status="unavailable", detail=detail).model_dump()
    return JSONResponse(body, 503, headers=headers)


@router.get(
    "/metrics",
    summary="Prometheus metrics (the admin credential only)",
    description=(
        "Metrics name every tenant and queue, so on the public port they need the "
        "admin credential as a bearer token. Prometheus scrapes the dedicated port "
        "(JOBQUEUE_API_METRICS_PORT) instead, which needs none."
    ),
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **docs.errors(401, 403),
    },
)
async def prometheus(
    rt: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(deps.bearer_scheme)],
) -> Response:
    principal = deps.authenticate(rt, credentials.credentials if credentials else None)
    if not principal.admin:
        raise http_errors.forbidden("metrics need the admin credential")
    payload, content_type = metrics.render()
    return Response(payload, media_type=content_type)
