"""The synchronous client (see jobqueue.client)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Self

import httpx

from jobqueue.api.schemas import BatchOut, JobOut, JobPage, StatsOut
from jobqueue.client import core
from jobqueue.models import DEFAULT_TIMEOUT_SECONDS


class Client(core.Base[httpx.Client]):
    """Synchronous client; see `jobqueue.client`."""

    _http_class = httpx.Client

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, call: core.Call, *, authed: bool = True) -> httpx.Response:
        attempt, refreshed = 0, False
        while True:
            response: httpx.Response | None = None
            try:
                if authed and (first := self._core.token_call()) is not None:
                    self._core.took_token(self._send(first, authed=False))
                response = self._http.request(
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
            time.sleep(pause)

    def _job(self, call: core.Call, ok: tuple[int, ...] = (200,)) -> JobOut:
        return JobOut.model_validate(core.expect(self._send(call), ok))

    def submit(
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
        return self._job(core.Core.submit_call(body, idempotency_key), ok=(200, 201))

    def submit_many(self, jobs: Sequence[Mapping[str, Any]]) -> BatchOut:
        """Each job is a dict of `submit`'s arguments; keys are generated where missing."""
        return BatchOut.model_validate(core.expect(self._send(core.Core.batch_call(jobs))))

    def get(self, job_id: uuid.UUID | str) -> JobOut:
        return self._job(core.Call("GET", f"/v1/jobs/{job_id}", repeatable=True))

    def list(
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
        return JobPage.model_validate(core.expect(self._send(call)))

    def retry(self, job_id: uuid.UUID | str, *, reset_attempts: bool = False) -> JobOut:
        body = {"reset_attempts": reset_attempts}
        return self._job(core.Call("POST", f"/v1/jobs/{job_id}/retry", json=body))

    def cancel(self, job_id: uuid.UUID | str) -> JobOut:
        return self._job(core.Call("POST", f"/v1/jobs/{job_id}/cancel"))

    def stats(self) -> StatsOut:
        call = core.Call("GET", "/v1/stats", repeatable=True)
        return StatsOut.model_validate(core.expect(self._send(call)))

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
            if (first := self._core.token_call()) is not None:
                self._core.took_token(self._send(first, authed=False))
            try:
                with connect(core.ws_url(self.base_url), open_timeout=deadline.left()) as ws:
                    ws.send(json.dumps({"token": self._core.token}))
                    json.loads(ws.recv(timeout=deadline.left()))  # "ready": subscribed
                    job = self.get(job_id)
                    while job.status not in core.FINISHED:
                        event = json.loads(ws.recv(timeout=deadline.left()))
                        if core.wait_step(event, wanted) == "read":
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

        if (first := self._core.token_call()) is not None:
            self._core.took_token(self._send(first, authed=False))
        with connect(core.ws_url(self.base_url)) as ws:
            ws.send(json.dumps({"token": self._core.token}))
            for message in ws:
                event: dict[str, Any] = json.loads(message)
                if event.get("type") != "ready":
                    yield event
