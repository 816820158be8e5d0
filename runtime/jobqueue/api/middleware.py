"""ASGI middleware: request-size limits (413 before any parsing) and metrics.

Plain ASGI rather than BaseHTTPMiddleware: no per-request task, and the
body is read once.
"""

from __future__ import annotations

import json
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jobqueue.api import http_errors
from jobqueue.api.http_errors import body as error_body
from jobqueue.api.routing import RouteTable
from jobqueue.observability import metrics

# Everything that is not a job submission is small.
SMALL_BODY_BYTES = 64 * 1024
# A refused body is read and dropped up to this much before the answer, so
# the client, still sending, gets to read the 413 instead of a reset.
DRAIN_BYTES = 64 * 1024 * 1024


async def _send_json(send: Send, status: int, content: dict[str, object]) -> None:
    payload = json.dumps(content).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodyLimit:
    """413 for a request body over its route's limit, before the app parses it.

    `limits` maps exact paths to byte limits; other paths get SMALL_BODY_BYTES.
    The exact check of a job's `data` size is the route's; this one only
    bounds memory (a single job's request may encode its data less densely).
    """

    def __init__(self, app: ASGIApp, *, limits: dict[str, int]) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"], SMALL_BODY_BYTES)
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    await self._refuse(receive, send, limit)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                if message.get("more_body", False):
                    await self._refuse(receive, send, limit, size)
                else:
                    await self._refuse(_nothing, send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": whole, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(receive: Receive, send: Send, limit: int, drained: int = 0) -> None:
        while drained < DRAIN_BYTES:
            message = await receive()
            drained += len(message.get("body", b""))
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        detail = f"request body over {limit} bytes"
        await _send_json(send, 413, error_body("payload_too_large", detail))


async def _nothing() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


class Observe:
    """api_requests_total and api_request_latency_seconds by route template,
    and the last word on bugs: an unexpected exception becomes a JSON 500
    (never a stack trace in the body) and one log line without frame locals.
    Caught here, inside Starlette's error middleware, so uvicorn does not log
    the exception a second time with its locals."""

    def __init__(self, app: ASGIApp, *, routes: RouteTable) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        started = False

        async def capture(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except Exception as exc:
            http_errors.log_unexpected(scope["path"], exc)
            status = 500
            if not started:
                await _send_json(send, 500, error_body("internal", "internal error"))
        finally:
            endpoint = self._endpoint(scope)
            method = scope["method"]
            metrics.API_REQUESTS.labels(method, endpoint, str(status)).inc()
            metrics.API_LATENCY.labels(method, endpoint).observe(time.perf_counter() - start)

    def _endpoint(self, scope: Scope) -> str:
        path = getattr(scope.get("route"), "path", None)
        if not isinstance(path, str):
            # Answered before routing (e.g. 413): find the template by matching.
            path = self.routes.template(scope["path"])
        return path if path is not None else metrics.UNMATCHED_ENDPOINT
