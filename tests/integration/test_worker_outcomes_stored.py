"""Issue 9, defects 2 and 3: whatever a handler returns or raises is stored,
and stored as it was, by a real worker on real PostgreSQL.

- An error message with NUL or a lone surrogate once made PostgreSQL refuse
  the fail statement: the worker died, the job reran after its lease and
  killed the next one. Such characters are now replaced by U+FFFD (the
  Unicode replacement character), in last_error, the error history and
  results alike; the job retries and dead-letters as any other.
- Results went to the driver as a jsonb[] array, which read a list result
  as one more array dimension: [1, 2] was stored as 1, [] as null, and a
  ragged list sent a successful job to the DLQ. Every JSON type must come
  back exactly, acked in one batch.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from jobqueue import db
from jobqueue.db import jobs
from jobqueue.models import JobStatus, NewJob
from jobqueue.worker.handlers import JobContext, PermanentFailure
from tests import factories
from tests.support.worker import fresh_queue, registry_with, running, settled

MARK = "\N{REPLACEMENT CHARACTER}"

# Every JSON type, and the shapes the jsonb[] parameter used to flatten.
RESULTS: list[Any] = [
    None, True, False, 0, -7, 2**53 + 1, 10**30, 1.5, -0.25, 1e16, 1.5e-7, 1e300, 5e-324,
    math.pi, "", "text", "\N{GRINNING FACE} é", [], [1, 2], [[1, 2], [3]], [[1], [2, 3]],
    [{"k": 1}], [[], [[]]], [None], {}, {"a": [1, {"b": None}]}, {"": {"": []}},
    ["mixed", 1, 2.5, True, None, {"x": [[]]}],
]


async def _run(
    dsn: str, pool: db.Pool, handler: Any, payloads: list[Any], **job: Any
) -> list[Any]:
    t = await factories.tenant(pool)
    q = fresh_queue()
    res = await jobs.submit_many(pool, tenant_id=t.id, jobs=[
        NewJob(type="h", queue=q, data={"v": p}, **job) for p in payloads
    ])
    ids = [r.job.id for r in res if not isinstance(r, Exception)]
    assert len(ids) == len(payloads)
    # Enough slots for all at once, so their successes are acked in batches.
    async with running(dsn, registry_with(h=handler), queue=q, concurrency=50,
                       poll_seconds=0.1, backoff_base_seconds=0.01,
                       backoff_cap_seconds=0.05):
        done = await settled(pool, ids)
    # `running` has checked that the worker stopped cleanly (exit code 0).
    return done


async def _echo(ctx: JobContext, data: Any) -> Any:
    return data["v"]


async def test_every_json_type_a_handler_returns_round_trips(dsn: str, pool: db.Pool) -> None:
    done = await _run(dsn, pool, _echo, RESULTS)
    assert [j.status for j in done] == [JobStatus.SUCCEEDED] * len(RESULTS)
    got = [j.result for j in done]
    assert got == RESULTS
    # Equal as Python values is not enough: 1e16 must stay a float, not
    # come back as the int 10000000000000000.
    assert [type(g) for g in got] == [type(r) for r in RESULTS]


@pytest.mark.parametrize("bad", ["\x00", "\ud800", "\udfff", "a\x00b\ud83dc"])
async def test_an_error_with_unstorable_characters_retries_then_dead_letters(
    dsn: str, pool: db.Pool, bad: str
) -> None:
    async def raises(ctx: JobContext, data: Any) -> Any:
        raise ValueError(f"attempt {ctx.attempt}: {bad}")

    [job] = await _run(dsn, pool, raises, [1], max_attempts=2)
    assert job.status is JobStatus.DLQ and job.attempt == 2
    want = "attempt 2: " + "".join(MARK if c in "\x00\ud800\udfff\ud83d" else c for c in bad)
    assert job.last_error is not None and job.last_error.startswith(f"ValueError: {want}")
    assert [e["attempt"] for e in job.errors] == [1, 2]
    assert all(MARK in e["error"] for e in job.errors)


async def test_a_permanent_failure_with_nul_dead_letters_at_once(
    dsn: str, pool: db.Pool
) -> None:
    async def refuses(ctx: JobContext, data: Any) -> Any:
        raise PermanentFailure("no\x00way")

    [job] = await _run(dsn, pool, refuses, [1], max_attempts=5)
    assert job.status is JobStatus.DLQ and job.attempt == 1
    assert job.last_error is not None
    assert job.last_error.startswith(f"PermanentFailure: no{MARK}way")


async def test_a_result_with_unstorable_characters_succeeds_with_markers(
    dsn: str, pool: db.Pool
) -> None:
    async def returns(ctx: JobContext, data: Any) -> Any:
        return {"k\x00": ["v\ud800", {"\udc00": "\x00"}], "fine": "\N{GRINNING FACE}"}

    async def ok(ctx: JobContext, data: Any) -> Any:
        return data["v"]

    async def either(ctx: JobContext, data: Any) -> Any:
        return await (returns if data["v"] == "bad" else ok)(ctx, data)

    # In one batch with good results: none of them may be held back by it.
    done = await _run(dsn, pool, either, ["bad", [1, 2], "good"])
    assert [j.status for j in done] == [JobStatus.SUCCEEDED] * 3
    assert done[0].result == {f"k{MARK}": [f"v{MARK}", {MARK: MARK}], "fine": "\N{GRINNING FACE}"}
    assert [j.result for j in done[1:]] == [[1, 2], "good"]


def _deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize("levels", [5_000, 100_000])
async def test_a_result_nested_too_deep_to_store_dead_letters_the_job_only(
    dsn: str, pool: db.Pool, levels: int
) -> None:
    deep = _deep(levels)

    async def returns(ctx: JobContext, data: Any) -> Any:
        return deep if data["v"] == "deep" else data["v"]

    done = await _run(dsn, pool, returns, ["deep", [1, 2]])
    assert [j.status for j in done] == [JobStatus.DLQ, JobStatus.SUCCEEDED]
    assert done[0].last_error is not None and "result" in done[0].last_error
    assert done[1].result == [1, 2]
