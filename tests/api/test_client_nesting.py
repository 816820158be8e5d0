"""The Python client refuses payloads past the nesting limit before sending
(the server would refuse them, and a 300-level one used to be stored and
then answer 500), and reads jobs stored deep before the limit."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from jobqueue import AsyncClient, Client, db, errors
from jobqueue.client import InvalidRequest
from jobqueue.models import JobId
from jobqueue.validation import MAX_JSON_DEPTH
from tests.support import api as support
from tests.support.procs import Proc


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


async def _count(pool: db.Pool, tenant: support.TenantKey) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM jobs WHERE tenant_id = $1", tenant.id))


async def test_the_sync_client_refuses_deep_payloads_and_reads_deep_rows(
    api: Proc, tenant_a: support.TenantKey, api_pool: db.Pool
) -> None:
    with Client(api.url, tenant_id=tenant_a.id, api_key=tenant_a.key) as jq:
        for depth in (MAX_JSON_DEPTH + 1, 300, 50_000):
            with pytest.raises(InvalidRequest, match=f"{MAX_JSON_DEPTH} levels") as raised:
                jq.submit("echo", nested(depth))
            assert isinstance(raised.value, errors.InvalidInput) and raised.value.status == 0
        with pytest.raises(InvalidRequest, match=r"jobs\[1\]\.data"):
            jq.submit_many([{"type": "echo", "data": 1}, {"type": "echo", "data": nested(300)}])
        with pytest.raises(InvalidRequest, match="NUL"):
            jq.submit("echo", {"k": "a\x00b"})
        assert await _count(api_pool, tenant_a) == 0

        deepest = jq.submit("echo", nested(MAX_JSON_DEPTH))
        assert jq.get(deepest.id).data == nested(MAX_JSON_DEPTH)
        await api_pool.execute(
            "UPDATE jobs SET payload = $2::text::jsonb WHERE id = $1",
            JobId(uuid.UUID(str(deepest.id))), "[" * 400 + "]" * 400,
        )
        got = jq.get(deepest.id)
        assert got.data is None and got.omitted is not None and "data" in got.omitted
        assert deepest.id in {j.id for j in jq.list().jobs}


async def test_the_async_client_refuses_deep_payloads(
    api: Proc, tenant_b: support.TenantKey, api_pool: db.Pool
) -> None:
    async with AsyncClient(api.url, tenant_id=tenant_b.id, api_key=tenant_b.key) as jq:
        with pytest.raises(InvalidRequest, match=f"{MAX_JSON_DEPTH} levels"):
            await jq.submit("echo", nested(MAX_JSON_DEPTH + 1))
        with pytest.raises(InvalidRequest, match=r"jobs\[0\]\.data"):
            await jq.submit_many([{"type": "echo", "data": nested(900)}])
    assert await _count(api_pool, tenant_b) == 0
