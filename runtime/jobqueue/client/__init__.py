"""A Python client for the jobqueue HTTP API: `Client` (sync) and `AsyncClient`.

    with Client("http://127.0.0.1:8000", tenant_id="acme", api_key="jq_…") as jq:
        job = jq.submit("send_email", {"to": "a@example.com"})
        print(jq.get(job.id).status)

Authentication: given `tenant_id` and `api_key`, the client buys a token at
POST /auth/token, reuses it until shortly before it expires and buys a new
one after a 401. Given `token`, it sends that bearer credential as it is
(the admin credential, or a token obtained elsewhere).

Retries: 429 and 503 answers are retried up to `max_retries` times after the
server's Retry-After (capped at `max_retry_wait`). Connection errors are
retried only where a repeat is harmless: reads, and submissions, which
carry an idempotency key (generated when not given) that every retry
reuses, so a retry never makes a second job.

Errors are `ApiError`s that are also the matching `jobqueue.errors` class:
`except errors.JobNotFound` works for a 404.
"""

from __future__ import annotations

from jobqueue.api.schemas import BatchOut, JobOut, JobPage, StatsOut
from jobqueue.client.aio import AsyncClient
from jobqueue.client.exceptions import (
    ApiError,
    Forbidden,
    IdempotencyConflictError,
    InvalidRequest,
    InvalidTransitionError,
    NotFoundError,
    PayloadTooLarge,
    RateLimited,
    TenantDisabledError,
    Unauthorized,
    Unavailable,
)
from jobqueue.client.sync import Client

__all__ = [
    "ApiError",
    "AsyncClient",
    "BatchOut",
    "Client",
    "Forbidden",
    "IdempotencyConflictError",
    "InvalidRequest",
    "InvalidTransitionError",
    "JobOut",
    "JobPage",
    "NotFoundError",
    "PayloadTooLarge",
    "RateLimited",
    "StatsOut",
    "TenantDisabledError",
    "Unauthorized",
    "Unavailable",
]
