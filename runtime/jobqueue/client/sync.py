"""The synchronous client (see jobqueue.client)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Self, TypeVar, Unpack

import httpx
from pydantic import BaseModel

from jobqueue.api.schemas import BatchOut, JobOut, JobPage, StatsOut
from jobqueue.client import core, operations
from jobqueue.client.operations import ListFilters, Operation, SubmitOptions

M = TypeVar("M", bound=BaseModel)


class Client(core.Base[httpx.Client]):
    """Synchronous client; see `jobqueue.client`."""

    _http_class = httpx.Client

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _ensure_token(self) -> None:
        if (first := self._core.token_call()) is not None:
            self._core.took_token(self._send(first, authed=False))

    def _send(self, call: core.Call, *, authed: bool = True) -> httpx.Response:
        tries = self._core.tries(call, authed=authed)
        pause: float | None
        while True:
            try:
                if authed:
                    self._ensure_token()
                response = self._http.send(self._request(call, authed=authed))
            except httpx.TransportError as exc:
                pause = tries.after_error(exc)
            else:
                if (pause := tries.after(response)) is None:
                    return response
            time.sleep(pause)

    def _run(self, op: Operation[M]) -> M:
        return op.result(self._send(op.call))

    def submit(self, type: str, data: Any = None, **options: Unpack[SubmitOptions]) -> JobOut:
        """Queue one job. Options: queue ("default"), priority ("normal", or 0
        to 3), max_attempts (the queue's default), timeout_seconds, run_at,
        idempotency_key (generated when not given), unique: {"keys": [...],
        "period_seconds": N, "states": [...]}, each optional; a duplicate
        returns the existing job (docs/design.md, invariant 12)."""
        return self._run(operations.submit(type, data, **options))

    def submit_many(self, jobs: Sequence[Mapping[str, Any]]) -> BatchOut:
        """Each job is a dict of `submit`'s arguments; keys are generated where missing."""
        return self._run(operations.submit_many(jobs))

    def get(self, job_id: uuid.UUID | str) -> JobOut:
        return self._run(operations.get(job_id))

    def list(self, **filters: Unpack[ListFilters]) -> JobPage:
        """A page newest first, filtered by status, queue and type; pass the
        previous page's `next` as `after` (page and page_size: offset paging)."""
        return self._run(operations.list_jobs(**filters))

    def retry(self, job_id: uuid.UUID | str, *, reset_attempts: bool = False) -> JobOut:
        return self._run(operations.retry(job_id, reset_attempts=reset_attempts))

    def cancel(self, job_id: uuid.UUID | str) -> JobOut:
        return self._run(operations.cancel(job_id))

    def stats(self) -> StatsOut:
        return self._run(operations.stats())

    def wait(self, job_id: uuid.UUID | str, timeout: float | None = None) -> JobOut:
        """Block until the job is succeeded, dlq or cancelled, and return it.

        Built on `WS /ws/jobs`: once subscribed it reads the job (it may
        have finished before), then re-reads it when its final event
        arrives or the server says events were missed; a dropped socket is
        reopened. TimeoutError after `timeout` seconds (None: no limit);
        NotFoundError if the job is not the caller's.
        """
        from websockets.exceptions import ConnectionClosed, InvalidHandshake
        from websockets.sync.client import connect

        deadline = core.Deadline(timeout)
        wanted = str(job_id)
        while True:
            self._ensure_token()
            try:
                with connect(core.ws_url(self.base_url), open_timeout=deadline.left()) as ws:
                    ws.send(core.hello(self._core.token))
                    core.event_of(ws.recv(timeout=deadline.left()))  # "ready": subscribed
                    job = self.get(job_id)
                    while job.status not in core.FINISHED:
                        event = core.event_of(ws.recv(timeout=deadline.left()))
                        if event is not None and core.wait_step(event, wanted) == "read":
                            job = self.get(job_id)
                    return job
            except (ConnectionClosed, InvalidHandshake, OSError) as exc:
                if isinstance(exc, TimeoutError):
                    raise TimeoutError(f"job {job_id} did not finish within {timeout} s") from exc
                # The token may have expired; the next round buys one if so.
                left = deadline.left()
                time.sleep(min(core.WAIT_RECONNECT_SECONDS, left or core.WAIT_RECONNECT_SECONDS))

    def watch(self) -> Iterator[dict[str, Any]]:
        """Job events as they happen (see jobqueue.api.ws), until the server closes."""
        from websockets.sync.client import connect

        self._ensure_token()
        with connect(core.ws_url(self.base_url)) as ws:
            ws.send(core.hello(self._core.token))
            for message in ws:
                if (event := core.event_of(message)) is not None:
                    yield event
