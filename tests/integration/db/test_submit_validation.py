"""The db layer refuses what every entrance refuses, before any SQL: a
caller that skips the API (the CLI, `jobqueue dev`, a script) cannot store
a job the API would reject."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from jobqueue import db, errors
from jobqueue.db import jobs
from jobqueue.models import NewJob, TenantId
from jobqueue.validation import MAX_JSON_DEPTH
from tests import factories


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value]
    return value


GOOD = NewJob(type="echo", data={"n": 1})
BAD: dict[str, NewJob] = {
    "deep data": replace(GOOD, data=nested(MAX_JSON_DEPTH + 1)),
    "very deep data": replace(GOOD, data=nested(50_000)),
    "null data": replace(GOOD, data=None),
    "NUL in data": replace(GOOD, data={"a": "x\x00y"}),
    "NUL in a key": replace(GOOD, data={"a\x00": 1}),
    "lone surrogate": replace(GOOD, data=["\ud800"]),
    "NaN": replace(GOOD, data={"x": float("nan")}),
    "not JSON": replace(GOOD, data={"when": datetime(2030, 1, 1)}),
    "int key": replace(GOOD, data={1: "a"}),
    # Names: what the table can store (the entrances check the wire patterns).
    "empty type": replace(GOOD, type=""),
    "long queue": replace(GOOD, queue="q" * 64),
    "NUL in queue": replace(GOOD, queue="a\x00b"),
    "long key": replace(GOOD, idempotency_key="k" * 256),
    "max_attempts 0": replace(GOOD, max_attempts=0),
    "max_attempts True": replace(GOOD, max_attempts=True),
    "timeout": replace(GOOD, timeout_seconds=10**12),
    "naive run_at": replace(GOOD, run_at=datetime(2030, 1, 1)),
}


async def _count(pool: db.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM jobs"))


@pytest.mark.parametrize("case", list(BAD))
async def test_submit_refuses_before_sql(pool: db.Pool, case: str) -> None:
    tenant = await factories.tenant(pool)
    with pytest.raises(errors.InvalidInput) as raised:
        await jobs.submit(pool, tenant_id=tenant.id, job=BAD[case])
    assert "\n" not in str(raised.value)
    with pytest.raises(errors.InvalidInput, match=r"^jobs\[1\]: "):
        await jobs.submit_many(pool, tenant_id=tenant.id, jobs=[GOOD, BAD[case]])
    assert await _count(pool) == 0


async def test_the_check_runs_before_any_statement(pool: db.Pool) -> None:
    """Even an unknown tenant gets the input error: no statement was sent."""
    with pytest.raises(errors.InvalidInput, match=f"{MAX_JSON_DEPTH} levels"):
        await jobs.submit(pool, tenant_id=TenantId("nobody"), job=BAD["deep data"])


async def test_the_limit_itself_is_stored_and_read_back(pool: db.Pool) -> None:
    tenant = await factories.tenant(pool)
    data = nested(MAX_JSON_DEPTH)
    done = await jobs.submit(pool, tenant_id=tenant.id, job=replace(GOOD, data=data))
    assert (await jobs.get(pool, job_id=done.job.id)).data == data


async def test_a_check_violation_does_not_echo_the_row(pool: db.Pool) -> None:
    """A constraint's DETAIL lists the failing row, payload included: the
    error carries only the message."""
    tenant = await factories.tenant(pool)
    with pytest.raises(errors.InvalidInput) as raised:
        await pool.execute("SELECT 1")  # warm the pool
        await db.translate(_bad_insert)(pool, tenant.id)
    assert "secret-payload" not in str(raised.value)
    assert "jobs_max_attempts_check" in str(raised.value)


async def _bad_insert(pool: db.Pool, tenant_id: TenantId) -> None:
    await pool.execute(
        "INSERT INTO jobs (tenant_id, queue, type, payload, max_attempts)"
        " VALUES ($1, 'q', 't', $2::jsonb, 0)",
        tenant_id, {"k": "secret-payload"},
    )


async def test_rows_too_deep_to_decode_do_not_fail_the_list(pool: db.Pool) -> None:
    tenant = await factories.tenant(pool)
    ok = await factories.submit(pool, tenant.id, data={"fine": 1})
    deep = await factories.submit(pool, tenant.id)
    await pool.execute(
        "UPDATE jobs SET payload = $2::text::jsonb WHERE id = $1",
        deep.id, "[" * 3000 + "]" * 3000,
    )
    page = await jobs.list_jobs(pool, tenant_id=tenant.id)
    by_id = {j.id: j for j in page.jobs}
    assert by_id[ok.id].data == {"fine": 1}
    assert "too deep" in by_id[deep.id].data
