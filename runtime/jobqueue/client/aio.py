"""The asynchronous client (see jobqueue.client)."""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Self

import httpx

from jobqueue.api.schemas import BatchOut, JobOut, JobPage, StatsOut
from jobqueue.client import core
from jobqueue.models import DEFAULT_TIMEOUT_SECONDS


class AsyncClient(core.Base[httpx.AsyncClient]):
    """Asynchronous client; the same methods as `Client`, awaited."""

    _http_class = httpx.AsyncClient

    @functools.cached_property
    def _token_lock(self) -> asyncio.Lock:
        return asyncio.Lock()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _ensure_token(self) -> None:
        # One token purchase for many concurrent calls.
        async with self._token_lock:
            if (first := self._core.token_call()) is not None:
                self._core.took_token(await self._send(first, authed=False))

    async def _send(self, call: core.Call, *, authed: bool = True) -> httpx.Response:
        attempt, refreshed = 0, False
        while True:
            response: httpx.Response | None = None
            try:
                if authed:
                    await self._ensure_token()
                response = await self._http.request(
                    call.method, call.path, json=call.json, params=call.params,
                    headers=self._core.headers(call, authed=authed),
                )
            except httpx.TransportError as exc:
                pause = self._core.after_transport_error(call, attempt, exc)
            else:
                step = self._core.after(response, attempt, authed=authed, refreshed=refreshed)
                if step is None:
                    return response
                if step == "refresh":
                    refreshed = True
                    continue
                pause = step
            attempt += 1
            await asyncio.sleep(pause)

    async def _job(self, call: core.Call, ok: tuple[int, ...] = (200,)) -> JobOut:
        return JobOut.model_validate(core.expect(await self._send(call), ok))

    async def submit(
        self,
        type: str,
        data: Any = None,
        *,
        queue: str = "default",
        priority: str | int = "normal",
        max_attempts: int | None = None,
        timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
        run_at: datetime | None = None,
        idempotency_key: str | None = None,
        unique: Mapping[str, Any] | None = None,
    ) -> JobOut:
        """`unique`: {"keys": [...], "period_seconds": N, "states": [...]}, each
        optional; a duplicate returns the existing job (docs/design.md,
        invariant 12)."""
        body = core.job_body(
            type,
            data,
            queue=queue,
            priority=priority,
            max_attempts=max_attempts,
            timeout_seconds=timeout_seconds,
            run_at=run_at,
            unique=unique,
        )
        return await self._job(core.Core.submit_call(body, idempotency_key), ok=(200, 201))

    async def submit_many(self, jobs: Sequence[Mapping[str, Any]]) -> BatchOut:
        return BatchOut.model_validate(core.expect(await self._send(core.Core.batch_call(jobs))))

    async def get(self, job_id: uuid.UUID | str) -> JobOut:
        return await self._job(core.Call("GET", f"/v1/jobs/{job_id}", repeatable=True))

    async def list(
        self,
        *,
        status: str | None = None,
        queue: str | None = None,
        type: str | None = None,
        page: int = 1,
        page_size: int = 50,
        after: str | None = None,
    ) -> JobPage:
        """A page newest first; pass the previous page's `next` as `after`."""
        params = core.list_params(status, queue, type, page, page_size, after)
        call = core.Call("GET", "/v1/jobs", params=params, repeatable=True)
        return JobPage.model_validate(core.expect(await self._send(call)))

    async def retry(self, job_id: uuid.UUID | str, *, reset_attempts: bool = False) -> JobOut:
        body = {"reset_attempts": reset_attempts}
        return await self._job(core.Call("POST", f"/v1/jobs/{job_id}/retry", json=body))

    async def cancel(self, job_id: uuid.UUID | str) -> JobOut:
        return await self._job(core.Call("POST", f"/v1/jobs/{job_id}/cancel"))

    async def stats(self) -> StatsOut:
        call = core.Call("GET", "/v1/stats", repeatable=True)
        return StatsOut.model_validate(core.expect(await self._send(call)))

    async def wait(self, job_id: uuid.UUID | str, timeout: float | None = None) -> JobOut:
        """Wait until the job is succeeded, dlq or cancelled, and return it
        (see `Client.wait`)."""
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidHandshake

        deadline = core.Deadline(timeout)
        wanted = str(job_id)
        while True:
            await self._ensure_token()
            try:
                async with asyncio.timeout(deadline.left()):
                    async with connect(core.ws_url(self.base_url)) as ws:
                        await ws.send(json.dumps({"token": self._core.token}))
                        json.loads(await ws.recv())  # "ready": subscribed
                        job = await self.get(job_id)
                        while job.status not in core.FINISHED:
                            event = json.loads(await ws.recv())
                            if core.wait_step(event, wanted) == "read":
                                job = await self.get(job_id)
                        return job
            except TimeoutError as exc:
                raise TimeoutError(f"job {job_id} did not finish within {timeout} s") from exc
            except (ConnectionClosed, InvalidHandshake, OSError):
                left = deadline.left()
                await asyncio.sleep(
                    min(core.WAIT_RECONNECT_SECONDS, left or core.WAIT_RECONNECT_SECONDS)
                )

    async def watch(self) -> AsyncIterator[dict[str, Any]]:
        """Job events as they happen (see jobqueue.api.ws), until the server closes."""
        from websockets.asyncio.client import connect

        await self._ensure_token()
        async with connect(core.ws_url(self.base_url)) as ws:
            await ws.send(json.dumps({"token": self._core.token}))
            async for message in ws:
                event: dict[str, Any] = json.loads(message)
                if event.get("type") != "ready":
                    yield event
