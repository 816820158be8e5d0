"""Issue 9, defect 1: no notification can fail a state change.

PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more, and the refusal
aborts the statement that sent it. The jobs trigger once packed 80 rows per
payload whatever their size, so with valid but long names a lease of 100,
a reaper round or a batch submit of more than about 60 jobs failed. Each
statement here is one the runtime issues, at the longest names the schema
allows (tenant ids of 63 characters; queue names of 63 characters, which
are the most bytes once UTF-8 or JSON escapes are counted), and every
change must still reach a listener, each payload under the limit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from jobqueue import db
from jobqueue.db import jobs, leases, maintenance, notify
from jobqueue.models import JobId, NewJob, TenantId, WorkerId
from tests import factories
from tests.support.wait import eventually

CHANNEL = "jobqueue_events"
LIMIT = 8000
TENANT = TenantId("t" * 62 + "1")  # 63 characters, the longest valid id
QUEUES = {
    "ascii": "q" * 63,
    # 4 bytes each in UTF-8: 252 bytes.
    "emoji": "\N{GRINNING FACE}" * 63,
    # Control characters leave jsonb's text as \u0001: 6 bytes each.
    "escaped": "\x01" * 63,
}


class Heard:
    """Every payload on the events channel, from a real LISTEN connection."""

    def __init__(self) -> None:
        self.payloads: list[str] = []
        self._more = asyncio.Event()

    def add(self, payload: str) -> None:
        self.payloads.append(payload)
        self._more.set()

    def events(self) -> list[list[str]]:
        return [e for p in self.payloads for e in json.loads(p)]

    def statuses(self, ids: list[JobId], status: str) -> set[str]:
        wanted = {str(i) for i in ids}
        return {e[0] for e in self.events() if e[2] == status and e[0] in wanted}

    async def until(self, ids: list[JobId], status: str, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while self.statuses(ids, status) != {str(i) for i in ids}:
                self._more.clear()
                await self._more.wait()


@pytest.fixture
async def heard(dsn: str) -> AsyncIterator[Heard]:
    h = Heard()
    handle = await notify.listen(dsn, CHANNEL, h.add)
    try:
        yield h
    finally:
        await handle.close()
        assert h.payloads, "the listener heard nothing"
        sizes = [len(p.encode()) for p in h.payloads]
        assert max(sizes) < LIMIT


async def _backlog(pool: db.Pool, queue: str, n: int, *, batch: int) -> list[JobId]:
    await factories.tenant(pool, TENANT, max_concurrent=10_000)
    ids = []
    for start in range(0, n, batch):
        res = await jobs.submit_many(
            pool, tenant_id=TENANT, jobs=[NewJob(type="echo", queue=queue, data={"i": i})
                                          for i in range(start, min(n, start + batch))],
        )
        for r in res:
            assert not isinstance(r, Exception), r
            ids.append(r.job.id)
    return ids


@pytest.mark.parametrize("kind", sorted(QUEUES))
async def test_a_batch_submit_of_long_names_is_stored_and_heard(
    pool: db.Pool, heard: Heard, kind: str
) -> None:
    ids = await _backlog(pool, QUEUES[kind], 1000, batch=1000)
    await heard.until(ids, "queued")
    # Packed, not one notification per job (NOTIFY takes a global lock at commit).
    assert len(heard.payloads) < 1000 / 10


@pytest.mark.parametrize("kind", sorted(QUEUES))
async def test_lease_start_and_ack_of_100_long_named_jobs(
    pool: db.Pool, heard: Heard, kind: str
) -> None:
    queue = QUEUES[kind]
    # Small batches: a lease statement, not the submission, is under test.
    # A prefetching lease (start=False), so every statement of the path runs.
    ids = await _backlog(pool, queue, 100, batch=10)
    got = await leases.lease(pool, queue=queue, worker_id=WorkerId("w" * 200), limit=100,
                             lease_seconds=30, start=False)
    assert sorted(g.job_id for g in got) == sorted(ids)
    held = [(g.job_id, g.token) for g in got]
    assert await leases.start(pool, held=held) == set(ids)
    done = await leases.ack(pool, done=[(i, t, None) for i, t in held])
    assert len(done) == 100
    for status in ("queued", "leased", "running", "succeeded"):
        await heard.until(ids, status)
    # Every event names its job's tenant and queue, for the hub and the wakeup.
    assert {(e[1], e[3]) for e in heard.events()} == {(TENANT, queue)}


@pytest.mark.parametrize("kind", sorted(QUEUES))
async def test_the_reaper_rescues_500_expired_long_named_leases(
    pool: db.Pool, heard: Heard, kind: str
) -> None:
    queue = QUEUES[kind]
    ids = await _backlog(pool, queue, 500, batch=10)
    got = []
    for _ in range(50):  # small leases: the rescue, not the lease, is under test
        got += await leases.lease(pool, queue=queue, worker_id=WorkerId("w1"), limit=10,
                                  lease_seconds=30)
    assert len(got) == 500
    # Test-only SQL: age the leases instead of sleeping past them.
    await pool.execute("UPDATE jobs SET lease_expires_at = now() - interval '1 second'"
                       " WHERE lease_expires_at IS NOT NULL")
    reaped = await maintenance.reap_expired(pool, limit=500)
    assert len(reaped) == 500
    counts = await pool.fetchval("SELECT count(*) FROM jobs WHERE status = 'queued'")
    assert counts == 500
    await heard.until(ids, "running")

    # queued twice: at submit and after the rescue. The rescue's events may
    # still be on their way when the leases' have arrived.
    def queued() -> list[object]:
        return [e for e in heard.events() if e[2] == "queued"]

    await eventually(lambda: len(queued()) >= 1000, timeout=20, what="1,000 queued events")
    assert len(queued()) == 1000


async def test_statements_of_a_thousand_rows_each_send_several_bounded_payloads(
    pool: db.Pool, heard: Heard
) -> None:
    ids = await _backlog(pool, QUEUES["escaped"], 1000, batch=10)
    await pool.execute("UPDATE jobs SET status = 'cancelled', finished_at = now()")
    await heard.until(ids, "cancelled")
    cancel_payloads = [p for p in heard.payloads if '"cancelled"' in p]
    assert 1 < len(cancel_payloads) < 1000 / 10
