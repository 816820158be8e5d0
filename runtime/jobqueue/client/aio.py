"""The asynchronous client (see jobqueue.client)."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Self, TypeVar, Unpack

import httpx
from pydantic import BaseModel

from jobqueue.api.schemas import BatchOut, JobOut, JobPage, StatsOut
from jobqueue.client import core, operations
from jobqueue.client.operations import ListFilters, Operation, SubmitOptions

M = TypeVar("M", bound=BaseModel)


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
        tries = self._core.tries(call, authed=authed)
        pause: float | None
        while True:
            try:
                if authed:
                    await self._ensure_token()
                response = await self._http.send(self._request(call, authed=authed))
            except httpx.TransportError as exc:
                pause = tries.after_error(exc)
            else:
                if (pause := tries.after(response)) is None:
                    return response
            await asyncio.sleep(pause)

    async def _run(self, op: Operation[M]) -> M:
        return op.result(await self._send(op.call))

    async def submit(
        self, type: str, data: Any = None, **options: Unpack[SubmitOptions]
    ) -> JobOut:
        """See `Client.submit`."""
        return await self._run(operations.submit(type, data, **options))

    async def submit_many(self, jobs: Sequence[Mapping[str, Any]]) -> BatchOut:
        return await self._run(operations.submit_many(jobs))

    async def get(self, job_id: uuid.UUID | str) -> JobOut:
        return await self._run(operations.get(job_id))

    async def list(self, **filters: Unpack[ListFilters]) -> JobPage:
        """See `Client.list`."""
        return await self._run(operations.list_jobs(**filters))

    async def retry(self, job_id: uuid.UUID | str, *, reset_attempts: bool = False) -> JobOut:
        return await self._run(operations.retry(job_id, reset_attempts=reset_attempts))

    async def cancel(self, job_id: uuid.UUID | str) -> JobOut:
        return await self._run(operations.cancel(job_id))

    async def stats(self) -> StatsOut:
        return await self._run(operations.stats())

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
                        await ws.send(core.hello(self._core.token))
                        core.event_of(await ws.recv())  # "ready": subscribed
                        job = await self.get(job_id)
                        while job.status not in core.FINISHED:
                            event = core.event_of(await ws.recv())
                            if event is not None and core.wait_step(event, wanted) == "read":
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
            await ws.send(core.hello(self._core.token))
            async for message in ws:
                if (event := core.event_of(message)) is not None:
                    yield event
