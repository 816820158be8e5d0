"""Issue 9: any JSON value the HTTP API accepts comes back byte-for-byte
equal, as the job's data and, returned by a handler, as its result.

Property-based (hypothesis): values of every JSON type nested up to 8 deep
(a nesting limit is the API's business; these stay well inside any), any
code point in strings, floats of every magnitude, integers past 64 bits.
Each value goes through `POST /v1/jobs` (the single submit's path to the
database) and `POST /v1/jobs/batch` (the batch's, JSON text in a text[]),
is run by the built-in `echo` handler in a real `jobqueue worker` process
and read back with `GET /v1/jobs/{id}`. Equal means equal JSON text:
`json.dumps(..., sort_keys=True)` of what was sent and of what came back,
so 1e16 coming back as the int 10000000000000000, a lost list level or a
changed string all fail.

What the API refuses is part of the property: a value it does not accept
must be refused with a 4xx and a JSON message, never a 500 or a job.
Refused by design: `null` as the whole of `data`, strings with NUL or a
lone surrogate (PostgreSQL cannot store them), more than 256 KiB. Not generated: -0.0, which
jsonb numbers cannot keep (it reads back as 0.0; README, Use it).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from jobqueue import db
from tests.support import api as support
from tests.support.procs import Proc
from tests.support.wait import eventually_sync

QUEUE = "json-roundtrip"
DEPTH = 8
MAX_PAYLOAD = 256 * 1024

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False).filter(
        lambda f: not (f == 0 and math.copysign(1, f) < 0))
    # Every code point, surrogates included (they are refused, see above).
    | st.text(st.characters(exclude_categories=()), max_size=12)
)


def _nested(depth: int) -> st.SearchStrategy[Any]:
    value: st.SearchStrategy[Any] = _scalars
    for _ in range(depth):
        keys = st.text(st.characters(exclude_categories=()), max_size=6)
        value = _scalars | st.lists(value, max_size=4) | st.dictionaries(keys, value, max_size=4)
    return value


JSON_VALUES = _nested(DEPTH)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)


def _acceptable(value: Any) -> bool:
    if value is None:
        return False
    if len(json.dumps(value, ensure_ascii=False).encode("utf-8", "replace")) > MAX_PAYLOAD:
        return False  # 413; the API's default limit
    return not any(
        "\x00" in s or any("\ud800" <= c <= "\udfff" for c in s) for s in _strings(value)
    )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _post(client: httpx.Client, path: str, body: Any) -> httpx.Response:
    # Sent as ASCII JSON text written here, so lone surrogates reach the
    # server as \\udXXX escapes (httpx would fail to encode them).
    return client.post(path, content=json.dumps(body).encode(), headers={
        "Content-Type": "application/json", "Idempotency-Key": uuid.uuid4().hex,
    })


@pytest.fixture(scope="module")
def echo_worker(api_dsn: str, logs: Path) -> Iterator[Proc]:
    worker = Proc("worker", ["worker", "--queue", QUEUE, "--concurrency", "20"],
                  dsn=api_dsn, logdir=logs).start()
    try:
        yield worker
    finally:
        assert worker.stop() == 0, worker.text()[-3000:]


@pytest.fixture
async def client(api: Proc, api_pool: db.Pool) -> AsyncIterator[httpx.Client]:
    # Quotas no example run can reach: rate limits are not under test.
    tenant = await support.tenant_with_key(api_pool, rate_per_minute=600_000, rate_burst=100_000)
    with httpx.Client(base_url=api.url, timeout=30,
                      headers=support.bearer(support.mint(tenant.id))) as c:
        yield c


def _finished(client: httpx.Client, job_id: str, worker: Proc) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        r = client.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        if job["status"] not in ("queued", "leased", "running"):
            return job
        assert worker.alive(), worker.text()[-3000:]
        return None

    return eventually_sync(finished, timeout=20, interval=0.01, what=f"job {job_id} finished")


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(value=JSON_VALUES)
def test_any_accepted_json_value_comes_back_equal_as_data_and_result(
    client: httpx.Client, echo_worker: Proc, value: Any
) -> None:
    single = _post(client, "/v1/jobs", {"type": "echo", "queue": QUEUE, "data": value})
    batch = _post(client, "/v1/jobs/batch", {"jobs": [
        {"type": "echo", "queue": QUEUE, "data": value, "idempotency_key": uuid.uuid4().hex}
    ]})
    if not _acceptable(value):
        event("refused")
        for r in (single, batch):
            assert 400 <= r.status_code < 500, r.text
            assert isinstance(r.json(), dict)
        return
    event("accepted")
    assert single.status_code == 201, single.text
    assert batch.status_code == 200, batch.text
    [item] = batch.json()["results"]
    assert item["outcome"] == "created", item
    want = _canonical(value)
    for submitted in (single.json(), item["job"]):
        assert _canonical(submitted["data"]) == want
        job = _finished(client, submitted["id"], echo_worker)
        assert job["status"] == "succeeded", job
        assert _canonical(job["data"]) == want
        assert _canonical(job["result"]) == want
