"""What both clients share: credentials, the retry policy, request building (no I/O)."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

import httpx

from jobqueue import unique as unique_rules
from jobqueue import validation
from jobqueue.client import exceptions
from jobqueue.models import NewJob

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


def check_data(data: Any, where: str = "data") -> None:
    """Refuse, before sending, a payload the server refuses (nested past
    validation.MAX_JSON_DEPTH, NUL, NaN, not JSON): the same check, so the
    error is the same and nothing goes over the wire. Status 0: not sent."""
    if (problem := validation.data_problem(data)) is not None:
        raise exceptions.InvalidRequest(0, "invalid_input", f"{where} {problem}")


def check_unique(type: str, data: Any, queue: str, options: Mapping[str, Any]) -> None:
    """Refuse, before sending, unique options the server refuses (status 0)."""
    unknown = set(options) - {"keys", "period_seconds", "states"}
    problem: str | None = f"unique has unknown fields: {sorted(unknown)}" if unknown else None
    if problem is None:
        try:
            opts = unique_rules.of(**options)
        except (ValueError, TypeError) as exc:
            problem = f"unique: {exc}"
        else:
            problem = unique_rules.problem(NewJob(type=type, data=data, queue=queue, unique=opts))
    if problem is not None:
        raise exceptions.InvalidRequest(0, "invalid_input", problem)


def job_body(
    type: str,
    data: Any,
    *,
    queue: str,
    priority: str | int,
    max_attempts: int | None,
    timeout_seconds: int,
    run_at: datetime | None,
    unique: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    data = {} if data is None else data
    check_data(data)
    if unique is not None:
        check_unique(type, data, queue, unique)
    body: dict[str, Any] = {
        "type": type,
        "data": data,
        "queue": queue,
        "priority": priority,
        "timeout_seconds": timeout_seconds,
        "run_at": run_at.isoformat() if run_at else None,
    }
    # Omitted, not null: the server then applies the queue's default (and an
    # older server its own, 5).
    if max_attempts is not None:
        body["max_attempts"] = max_attempts
    if unique is not None:
        body["unique"] = dict(unique)
    return body


def expect(response: httpx.Response, ok: tuple[int, ...] = (200,)) -> Any:
    """The answer's JSON body, or the matching error if its status is not `ok`."""
    if response.status_code not in ok:
        raise exceptions.error_of(response)
    return response.json()


def list_params(
    status: str | None,
    queue: str | None,
    type: str | None,
    page: int,
    page_size: int,
    after: str | None = None,
) -> dict[str, str | int]:
    params: dict[str, str | int] = {"page": page, "page_size": page_size}
    for name, value in (("status", status), ("queue", queue), ("type", type), ("after", after)):
        if value is not None:
            params[name] = value
    return params


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

    def after_transport_error(self, call: Call, attempt: int, exc: httpx.TransportError) -> float:
        """Seconds to wait before sending `call` again; Unavailable if it may not be."""
        pause = self.wait(attempt, None) if call.repeatable else None
        if pause is None:
            raise exceptions.Unavailable(0, "unreachable", str(exc)) from exc
        return pause

    def after(
        self, response: httpx.Response, attempt: int, *, authed: bool, refreshed: bool
    ) -> float | Literal["refresh"] | None:
        """What to do with an answer: None to return it, "refresh" to buy a
        new token and send again at once (a 401, the first time), or the
        seconds to wait before sending again (429, 503)."""
        if response.status_code == 401 and authed and self.can_refresh and not refreshed:
            self.forget_token()
            return "refresh"
        return self.wait(attempt, response)

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

    @staticmethod
    def submit_call(body: dict[str, Any], idempotency_key: str | None) -> Call:
        key = idempotency_key or str(uuid.uuid4())
        return Call(
            "POST", "/v1/jobs", json=body, headers={"Idempotency-Key": key}, repeatable=True
        )

    @staticmethod
    def batch_call(jobs: Sequence[Mapping[str, Any]]) -> Call:
        for i, j in enumerate(jobs):
            if "data" in j:
                check_data(j["data"], f"jobs[{i}].data")
        items = [
            {**j, "idempotency_key": j.get("idempotency_key") or str(uuid.uuid4())} for j in jobs
        ]
        return Call("POST", "/v1/jobs/batch", json={"jobs": items}, repeatable=True)


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
