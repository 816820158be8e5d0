"""What both clients share: credentials, the retry policy, the WebSocket's
messages (no I/O; the calls themselves are `operations`)."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

import httpx

from jobqueue.client import exceptions

Method = Literal["GET", "POST"]
H = TypeVar("H", httpx.Client, httpx.AsyncClient)
# A token this close to its expiry (or to a tenth of its life, if less) is
# replaced before use, so clocks a little apart do not cause 401s.
_TOKEN_MARGIN_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Call:
    method: Method
    path: str
    json: Any = None
    params: Mapping[str, str | int] | None = None
    headers: Mapping[str, str] | None = None
    # May a connection error be retried? (the request is safe to repeat)
    repeatable: bool = False


class Core:
    """Credentials and the retry policy of one client."""

    def __init__(
        self,
        *,
        tenant_id: str | None,
        api_key: str | None,
        token: str | None,
        max_retries: int,
        max_retry_wait: float,
    ) -> None:
        if token is None and (tenant_id is None or api_key is None):
            raise ValueError("give tenant_id and api_key, or token")
        self.tenant_id = tenant_id
        self._api_key = api_key
        self._token = token
        self._expires_at = float("inf") if token is not None else 0.0
        self._margin = _TOKEN_MARGIN_SECONDS
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait

    @property
    def can_refresh(self) -> bool:
        return self._api_key is not None

    def token_call(self) -> Call | None:
        """The call to make first, when the token is missing or about to expire."""
        if time.time() < self._expires_at - self._margin:
            return None
        body = {"tenant_id": self.tenant_id, "api_key": self._api_key}
        return Call("POST", "/auth/token", json=body, repeatable=True)

    def took_token(self, response: httpx.Response) -> None:
        if response.status_code != 200:
            raise exceptions.error_of(response)
        body = response.json()
        self._token = str(body["access_token"])
        lifetime = float(body["expires_in"])
        self._expires_at = time.time() + lifetime
        self._margin = min(_TOKEN_MARGIN_SECONDS, lifetime / 10)

    def forget_token(self) -> None:
        self._expires_at = 0.0

    @property
    def token(self) -> str | None:
        return self._token

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def headers(self, call: Call, *, authed: bool) -> dict[str, str]:
        return {**(call.headers or {}), **(self.auth_headers() if authed else {})}

    def tries(self, call: Call, *, authed: bool) -> Tries:
        return Tries(self, call, authed=authed)

    def wait(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before retrying, or None to give up."""
        if attempt >= self.max_retries:
            return None
        if response is not None:
            if response.status_code not in (429, 503):
                return None
            hinted = exceptions.retry_after(response)
            if hinted is not None:
                return min(hinted, self.max_retry_wait)
        backoff = min(self.max_retry_wait, 0.1 * 2.0**attempt)
        return backoff * random.uniform(0.5, 1.0)


class Tries:
    """The retry policy's state for one call: after each try, whether to
    hand the answer back (None) or how long to wait before trying again."""

    def __init__(self, core: Core, call: Call, *, authed: bool) -> None:
        self._core = core
        self._call = call
        self._authed = authed
        self._attempt = 0
        self._refreshed = False

    def after_error(self, exc: httpx.TransportError) -> float:
        """Seconds to wait before sending again; Unavailable if it may not be."""
        pause = self._core.wait(self._attempt, None) if self._call.repeatable else None
        if pause is None:
            raise exceptions.Unavailable(0, "unreachable", str(exc)) from exc
        self._attempt += 1
        return pause

    def after(self, response: httpx.Response) -> float | None:
        """None to return the answer; else the seconds to wait before sending
        again: 0 after a first 401 (a new token is bought first), the
        server's hint or backoff after 429 and 503."""
        refresh = self._authed and not self._refreshed and self._core.can_refresh
        if response.status_code == 401 and refresh:
            self._refreshed = True
            self._core.forget_token()
            return 0.0
        pause = self._core.wait(self._attempt, response)
        self._attempt += 1
        return pause


FINISHED = frozenset({"succeeded", "dlq", "cancelled"})
# Between reconnections of wait()'s socket.
WAIT_RECONNECT_SECONDS = 0.5


def wait_step(event: Mapping[str, Any], job_id: str) -> Literal["read", "skip"]:
    """What `wait()` does with one WebSocket event: "read" the job again
    (it finished, or events may have been missed), or "skip" it."""
    kind = event.get("type")
    if kind == "resync":
        return "read"
    if kind == "job" and event.get("job_id") == job_id and event.get("status") in FINISHED:
        return "read"
    return "skip"


class Deadline:
    """Seconds left until a `wait()` gives up; None waits forever."""

    def __init__(self, timeout: float | None) -> None:
        self._end = None if timeout is None else time.monotonic() + timeout
        self.timeout = timeout

    def left(self) -> float | None:
        if self._end is None:
            return None
        left = self._end - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the job did not finish within {self.timeout} s")
        return left


def hello(token: str | None) -> str:
    """The first message on /ws/jobs: the credential."""
    return json.dumps({"token": token})


def event_of(message: str | bytes) -> dict[str, Any] | None:
    """A job event from /ws/jobs, or None for the "ready" greeting."""
    event: dict[str, Any] = json.loads(message)
    return None if event.get("type") == "ready" else event


def ws_url(base_url: str) -> str:
    scheme, rest = base_url.split("://", 1)
    return ("wss://" if scheme == "https" else "ws://") + rest.rstrip("/") + "/ws/jobs"


class Base(Generic[H]):
    """What `Client` and `AsyncClient` are made of: the credentials and retry
    policy (`Core`) and an httpx client of their kind."""

    _http_class: type[H]

    def __init__(
        self,
        base_url: str,
        *,
        tenant_id: str | None = None,
        api_key: str | None = None,
        token: str | None = None,
        max_retries: int = 5,
        max_retry_wait: float = 30.0,
        timeout: float = 30.0,
        http: H | None = None,
    ) -> None:
        self._core = Core(
            tenant_id=tenant_id,
            api_key=api_key,
            token=token,
            max_retries=max_retries,
            max_retry_wait=max_retry_wait,
        )
        self._http: H = http or self._http_class(base_url=base_url, timeout=timeout)
        self.base_url = base_url

    def _request(self, call: Call, *, authed: bool) -> httpx.Request:
        return self._http.build_request(
            call.method, call.path, json=call.json, params=call.params,
            headers=self._core.headers(call, authed=authed),
        )
