"""The client's retry policy and error mapping, on real httpx responses (no I/O)."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from jobqueue import errors
from jobqueue.client import core, operations
from jobqueue.client import exceptions as client_errors


def answer(
    status: int, body: object = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers or {})


def policy(max_retries: int = 3) -> core.Core:
    return core.Core(
        tenant_id=None, api_key=None, token="t", max_retries=max_retries, max_retry_wait=10
    )


def test_429_and_503_wait_for_retry_after_capped_other_answers_do_not_retry() -> None:
    p = policy()
    assert p.wait(0, answer(429, headers={"Retry-After": "2"})) == 2
    assert p.wait(0, answer(503, headers={"Retry-After": "60"})) == 10
    for status in (200, 201, 400, 404, 409, 500):
        assert p.wait(0, answer(status)) is None
    assert p.wait(3, answer(429, headers={"Retry-After": "1"})) is None  # out of retries
    backoff = p.wait(2, None)  # a connection error: exponential backoff with jitter
    assert backoff is not None and 0.2 <= backoff <= 0.4


def test_retry_after_as_an_http_date() -> None:
    later = email.utils.formatdate(time.time() + 5, usegmt=True)
    hinted = client_errors.retry_after(answer(503, headers={"Retry-After": later}))
    assert hinted is not None and 3 < hinted <= 5
    assert client_errors.retry_after(answer(503, headers={"Retry-After": "soon"})) is None


@pytest.mark.parametrize(
    ("status", "code", "domain"),
    [
        (404, "not_found", errors.JobNotFound),
        (409, "idempotency_conflict", errors.IdempotencyConflict),
        (409, "invalid_transition", errors.InvalidTransition),
        (403, "tenant_disabled", errors.TenantDisabled),
        (422, "validation_error", errors.InvalidInput),
        (429, "rate_limited", errors.QuotaExceeded),
        (503, "unavailable", errors.DatabaseUnavailable),
    ],
)
def test_answers_become_the_matching_domain_errors(
    status: int, code: str, domain: type[Exception]
) -> None:
    err = client_errors.error_of(answer(status, {"error": code, "detail": "why"}))
    assert isinstance(err, domain) and isinstance(err, client_errors.ApiError)
    assert (err.status, err.code, err.detail) == (status, code, "why")


def test_a_non_json_answer_still_becomes_an_api_error() -> None:
    err = client_errors.error_of(httpx.Response(502, text="bad gateway"))
    assert (err.status, err.code, err.detail) == (502, "http_error", "bad gateway")


def test_submissions_carry_a_key_that_retries_reuse() -> None:
    call = operations.submit("echo").call
    assert call.headers is not None and call.repeatable
    assert len(call.headers["Idempotency-Key"]) == 36
    assert operations.submit("echo", idempotency_key="k1").call.headers == {"Idempotency-Key": "k1"}
    batch = operations.submit_many([{"type": "echo"}, {"type": "echo", "idempotency_key": "k"}])
    items = batch.call.json["jobs"]
    assert items[1]["idempotency_key"] == "k" and items[0]["idempotency_key"]


def test_an_unset_max_attempts_is_left_out_so_the_queue_default_applies() -> None:
    assert "max_attempts" not in operations.submit("echo", queue="q", max_attempts=None).call.json
    assert operations.submit("echo", queue="q", max_attempts=3).call.json["max_attempts"] == 3


def test_an_answer_is_read_as_its_model_or_raised_as_its_error() -> None:
    op = operations.stats()
    assert op.result(answer(200, {"depth": [], "oldest_queued_age_seconds": None})).depth == []
    with pytest.raises(client_errors.Unavailable):
        op.result(answer(503, {"error": "unavailable", "detail": "down"}))
    created = operations.submit("echo")
    assert created.ok == (200, 201) and operations.get("x").ok == (200,)


def test_list_sends_only_the_filters_given() -> None:
    params = operations.list_jobs(queue="q", after="c").call.params
    assert params == {"page": 1, "page_size": 50, "queue": "q", "after": "c"}


def test_a_first_401_buys_a_new_token_once_then_the_answer_is_returned() -> None:
    p = core.Core(tenant_id="a", api_key="k", token=None, max_retries=3, max_retry_wait=1)
    tries = p.tries(operations.get("x").call, authed=True)
    assert tries.after(answer(401)) == 0.0
    assert p.token_call() is not None  # the token was forgotten: the next try buys one
    assert tries.after(answer(401)) is None
    assert tries.after(answer(200)) is None


def test_a_connection_error_is_retried_only_where_a_repeat_is_harmless() -> None:
    error = httpx.ConnectError("refused")
    assert policy().tries(operations.get("x").call, authed=True).after_error(error) > 0
    with pytest.raises(client_errors.Unavailable, match="refused"):
        policy().tries(operations.cancel("x").call, authed=True).after_error(error)


def test_credentials_are_required() -> None:
    with pytest.raises(ValueError, match="tenant_id and api_key, or token"):
        core.Core(tenant_id="a", api_key=None, token=None, max_retries=1, max_retry_wait=1)


def test_websocket_url_follows_the_scheme() -> None:
    assert core.ws_url("http://h:1/") == "ws://h:1/ws/jobs"
    assert core.ws_url("https://h") == "wss://h/ws/jobs"
