"""Every call of the clients as data: the request to send, checked before
sending as the server checks it, and how to read its answer.

`Client` and `AsyncClient` only send (their `_send`) and hand the answer
back to `Operation.result`, so the two cannot drift apart on what a call
sends or returns.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypedDict, TypeVar

import httpx
from pydantic import BaseModel

from jobqueue import unique as unique_rules
from jobqueue import validation
from jobqueue.api.schemas import BatchOut, JobOut, JobPage, StatsOut
from jobqueue.client import exceptions
from jobqueue.client.core import Call
from jobqueue.models import DEFAULT_TIMEOUT_SECONDS, NewJob

M = TypeVar("M", bound=BaseModel)


class SubmitOptions(TypedDict, total=False):
    """`submit`'s keyword arguments; what is left out takes `submit`'s default."""

    queue: str
    priority: str | int
    max_attempts: int | None
    timeout_seconds: int
    run_at: datetime | None
    idempotency_key: str | None
    unique: Mapping[str, Any] | None


class ListFilters(TypedDict, total=False):
    """`list`'s keyword arguments; what is left out takes `list_jobs`'s default."""

    status: str | None
    queue: str | None
    type: str | None
    page: int
    page_size: int
    after: str | None


@dataclass(frozen=True, slots=True)
class Operation(Generic[M]):
    call: Call
    model: type[M]
    ok: tuple[int, ...] = (200,)

    def result(self, response: httpx.Response) -> M:
        """The answer as `model`, or the matching error if its status is not `ok`."""
        return self.model.model_validate(expect(response, self.ok))


def expect(response: httpx.Response, ok: tuple[int, ...] = (200,)) -> Any:
    """The answer's JSON body, or the matching error if its status is not `ok`."""
    if response.status_code not in ok:
        raise exceptions.error_of(response)
    return response.json()


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


def submit(
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
) -> Operation[JobOut]:
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
    # Made once, here: every retry of this call sends the same key.
    key = idempotency_key or str(uuid.uuid4())
    call = Call("POST", "/v1/jobs", json=body, headers={"Idempotency-Key": key}, repeatable=True)
    return Operation(call, JobOut, ok=(200, 201))


def submit_many(jobs: Sequence[Mapping[str, Any]]) -> Operation[BatchOut]:
    for i, j in enumerate(jobs):
        if "data" in j:
            check_data(j["data"], f"jobs[{i}].data")
    items = [
        {**j, "idempotency_key": j.get("idempotency_key") or str(uuid.uuid4())} for j in jobs
    ]
    call = Call("POST", "/v1/jobs/batch", json={"jobs": items}, repeatable=True)
    return Operation(call, BatchOut)


def get(job_id: uuid.UUID | str) -> Operation[JobOut]:
    return Operation(Call("GET", f"/v1/jobs/{job_id}", repeatable=True), JobOut)


def list_jobs(
    *,
    status: str | None = None,
    queue: str | None = None,
    type: str | None = None,
    page: int = 1,
    page_size: int = 50,
    after: str | None = None,
) -> Operation[JobPage]:
    params: dict[str, str | int] = {"page": page, "page_size": page_size}
    for name, value in (("status", status), ("queue", queue), ("type", type), ("after", after)):
        if value is not None:
            params[name] = value
    return Operation(Call("GET", "/v1/jobs", params=params, repeatable=True), JobPage)


def retry(job_id: uuid.UUID | str, *, reset_attempts: bool = False) -> Operation[JobOut]:
    body = {"reset_attempts": reset_attempts}
    return Operation(Call("POST", f"/v1/jobs/{job_id}/retry", json=body), JobOut)


def cancel(job_id: uuid.UUID | str) -> Operation[JobOut]:
    return Operation(Call("POST", f"/v1/jobs/{job_id}/cancel"), JobOut)


def stats() -> Operation[StatsOut]:
    return Operation(Call("GET", "/v1/stats", repeatable=True), StatsOut)
