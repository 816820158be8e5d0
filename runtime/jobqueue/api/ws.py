"""WS /ws/jobs: a tenant's job state changes, live.

The token comes in the query string (`?token=…`) or as the first message
(`{"token": "…"}` or the bare token); a tenant sees only its own jobs, the
admin every tenant's. Messages are JSON: first `{"type": "ready"}` once the
subscription is in place, then `{"type": "job", "job_id", "tenant_id",
"status", "queue"}` per change, in commit order, `{"type": "progress",
"job_id", "tenant_id", "status", "queue", "progress", "note"}` per
`ctx.progress()` report the worker wrote, and `{"type": "resync"}`
when events may have been missed (the server's LISTEN connection came
back). A watcher that falls `ws_queue_size` events behind is closed with
code 1013; it should reconnect and re-read what it cares about. The socket
closes with 1008 when the token is refused or expires, and, as HTTP refuses
the tenant's requests, with 4403 once its tenant is disabled and 4401 once
it is deleted, within `tenant_cache_seconds` (see `api.revalidate`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from jobqueue import errors
from jobqueue.api import deps
from jobqueue.api.http_errors import HttpError, log_unexpected
from jobqueue.api.hub import Subscription
from jobqueue.api.state import Runtime
from jobqueue.api.tokens import Principal

router = APIRouter()


POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013
FIRST_MESSAGE_SECONDS = 5.0


def _token_of(message: str) -> str:
    try:
        parsed = json.loads(message)
    except ValueError:
        return message.strip()
    if isinstance(parsed, dict) and isinstance(parsed.get("token"), str):
        return str(parsed["token"])
    return ""


async def _principal(websocket: WebSocket, rt: Runtime) -> Principal | None:
    """Authenticate and admit the watcher; None after closing the socket."""
    token = websocket.query_params.get("token")
    if token is None:
        await websocket.accept()
        try:
            async with asyncio.timeout(FIRST_MESSAGE_SECONDS):
                token = _token_of(await websocket.receive_text())
        except (TimeoutError, WebSocketDisconnect, KeyError):
            await _close(websocket, POLICY_VIOLATION, "send the token as the first message")
            return None
    try:
        principal = deps.authenticate(rt, token or None)
        await deps.admit(rt, principal)
    except HttpError as exc:
        code = TRY_AGAIN_LATER if exc.status in (429, 503) else POLICY_VIOLATION
        await _close(websocket, code, exc.detail)
        return None
    except (errors.JobQueueError, TimeoutError) as exc:
        unavailable = isinstance(exc, errors.DatabaseUnavailable | TimeoutError)
        code = TRY_AGAIN_LATER if unavailable else POLICY_VIOLATION
        await _close(websocket, code, "database unavailable" if unavailable else str(exc))
        return None
    return principal


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    # Before accept this refuses the handshake (HTTP 403); after, it closes.
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code=code, reason=reason[:120])


async def _pump(websocket: WebSocket, sub: Subscription) -> tuple[int, str]:
    while True:
        event = await sub.queue.get()
        if event is None:
            return sub.close_code, sub.close_reason
        await websocket.send_text(json.dumps({k: v for k, v in event.items() if v is not None}))


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) client messages; returns when the client goes away."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return


@router.websocket("/ws/jobs")
async def watch(websocket: WebSocket) -> None:
    rt: Runtime = websocket.app.state.runtime
    principal = await _principal(websocket, rt)
    if principal is None:
        return
    sub = rt.hub.subscribe(principal.tenant_id)
    try:
        if websocket.client_state is WebSocketState.CONNECTING:
            await websocket.accept()
        await websocket.send_text(json.dumps({"type": "ready"}))
        ttl = None if principal.expires_at is None else principal.expires_at - time.time()
        pump = asyncio.create_task(_pump(websocket, sub), name="ws-pump")
        drain = asyncio.create_task(_drain(websocket), name="ws-drain")
        done, pending = await asyncio.wait(
            {pump, drain}, timeout=ttl, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pump in done and pump.exception() is None:
            code, reason = pump.result()
            await _close(websocket, code, reason)
        elif not done:
            await _close(websocket, POLICY_VIOLATION, "token expired")
    except WebSocketDisconnect:
        pass
    except Exception as exc:
        log_unexpected(websocket.url.path, exc)
        await _close(websocket, INTERNAL_ERROR, "internal error")
    finally:
        rt.hub.unsubscribe(sub)
