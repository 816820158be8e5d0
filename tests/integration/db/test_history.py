"""History (db.history, the reaper's archive pass): finished jobs move to day
partitions, retention drops whole partitions, and readers see both tables."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jobqueue import db, errors
from jobqueue.db import history, jobs, leases, listing
from jobqueue.models import JobId, JobStatus, TenantId, WorkerId
from jobqueue.observability import logging as obslog
from jobqueue.reaper.reaper import Reaper
from jobqueue.settings import ReaperSettings
from tests import factories

DAY = 86400.0
WEEK = 7 * DAY
log = obslog.get_logger("test.history")


async def _finished(pool: db.Pool, tenant_id: TenantId, n: int, *, days_ago: float) -> list[JobId]:
    """`n` succeeded jobs whose finish is `days_ago` back (test-only aging)."""
    made = await factories.backlog(pool, tenant_id, n, queue="h")
    held = await leases.lease(pool, queue="h", worker_id=WorkerId("w"), limit=n,
                              lease_seconds=60)
    await leases.ack(pool, done=[(h.job_id, h.token, None) for h in held])
    ids = [j.id for j in made]
    await pool.execute(
        "UPDATE jobs SET finished_at = now() - make_interval(secs => $2) WHERE id = ANY($1)",
        ids, days_ago * DAY)
    return ids


def _reaper(pool: db.Pool, **kw: Any) -> Reaper:
    kw.setdefault("archive_after_seconds", DAY)
    return Reaper(pool, ReaperSettings(**kw), log=log)


async def _drain(r: Reaper) -> None:
    while (await r.run_once()).full:
        pass


async def _partitions(pool: db.Pool) -> list[str]:
    return [p.name for p in await history.partitions(pool)]


async def test_days_past_retention_are_dropped_whole_and_younger_days_stay(
    pool: db.Pool,
) -> None:
    t = await factories.tenant(pool, max_concurrent=1000)
    old = await _finished(pool, t.id, 20, days_ago=5)
    young = await _finished(pool, t.id, 10, days_ago=2)
    hot = await _finished(pool, t.id, 3, days_ago=0)

    r = _reaper(pool, retention_seconds=WEEK, archive_batch=7)
    await _drain(r)
    assert r.totals["archived"] == 30 and r.totals["expired"] == 0
    made = await _partitions(pool)
    assert len(made) == 5 + 1 + 2  # the oldest finish day to today, and two days ahead
    assert await pool.fetchval("SELECT count(*) FROM jobs") == 3

    # Retention shortened to four days: the day five back lies wholly past it.
    r = _reaper(pool, retention_seconds=4 * DAY)
    result = await r.run_once()
    assert result.partitions_dropped == 1 and result.expired == 0
    assert len(await _partitions(pool)) == len(made) - 1
    for job_id in old:
        assert await _absent(pool, job_id)
    for job_id in young + hot:
        assert (await jobs.get(pool, job_id=job_id)).status is JobStatus.SUCCEEDED
    # No row of history was deleted one by one: the rows left are all there.
    assert await pool.fetchval("SELECT count(*) FROM jobs_history") == 10
    assert await pool.fetchval(
        "SELECT coalesce(sum(n_tup_del), 0) FROM pg_stat_user_tables"
        " WHERE relname LIKE 'jobs_history%'") == 0
    assert (await r.run_once()).partitions_dropped == 0  # nothing more to drop


async def _absent(pool: db.Pool, job_id: JobId) -> bool:
    try:
        await jobs.get(pool, job_id=job_id)
    except errors.JobNotFound:
        return True
    return False


async def test_jobs_found_past_retention_leave_without_a_partition(pool: db.Pool) -> None:
    """History left in the hot table by an older version, or by a reaper that
    did not run for longer than retention: gone, not archived into a day
    that is already dropped."""
    t = await factories.tenant(pool, max_concurrent=1000)
    stale = await _finished(pool, t.id, 4, days_ago=30)
    kept = await _finished(pool, t.id, 2, days_ago=3)
    r = _reaper(pool, retention_seconds=WEEK)
    await _drain(r)
    assert (r.totals["archived"], r.totals["expired"]) == (6, 4)
    names = await _partitions(pool)
    assert len(names) == 7 + 1 + 2  # from the oldest day retention keeps, not 30 back
    for job_id in stale:
        assert await _absent(pool, job_id)
    for job_id in kept:
        assert (await jobs.get(pool, job_id=job_id)).finished_at is not None


async def test_partitions_are_made_ahead_once(pool: db.Pool) -> None:
    first = await history.ensure_partitions(pool, retention_seconds=WEEK)
    again = await history.ensure_partitions(pool, retention_seconds=WEEK)
    assert (first, again) == (3, 0)  # today and two days ahead, then nothing
    names = await _partitions(pool)
    today = await pool.fetchval("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')")
    assert names[0] == f"jobs_history_{today}"


async def test_a_dead_lettered_job_in_history_is_retried_back_into_the_queue(
    pool: db.Pool,
) -> None:
    t = await factories.tenant(pool)
    [dead] = await factories.dead_lettered(pool, t.id, 1)
    await pool.execute("UPDATE jobs SET finished_at = now() - interval '2 days'")
    await _drain(_reaper(pool, retention_seconds=WEEK))
    assert await pool.fetchval("SELECT count(*) FROM jobs") == 0
    retried = await jobs.retry(pool, job_id=dead.id, tenant_id=t.id)
    assert retried.status is JobStatus.QUEUED and retried.finished_at is None
    assert (retried.id, retried.seq, retried.created_at) == (dead.id, dead.seq, dead.created_at)
    assert await pool.fetchval("SELECT count(*) FROM jobs_history") == 0
    [again] = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=1,
                                 lease_seconds=30)
    assert again.job_id == dead.id


async def test_a_deep_page_reads_each_partition_from_the_cursor(
    dsn: str, pool: db.Pool
) -> None:
    """Listing across the hot table and four days of history: ordered index
    scans merged, no sort of the history, and a deep page touching about a
    page of index entries in each."""
    t = await factories.tenant(pool, max_concurrent=10_000)
    for days in (1.5, 2.5, 3.5, 4.5):
        await _finished(pool, t.id, 1500, days_ago=days)
    await _finished(pool, t.id, 1500, days_ago=0)
    await _drain(_reaper(pool, retention_seconds=WEEK, archive_batch=5000))
    await pool.execute("ANALYZE jobs_history")
    # What autovacuum (tuned for the hot table) does after the moves: their
    # dead index entries would otherwise be visited once more each.
    await pool.execute("VACUUM (ANALYZE) jobs")
    deep = await listing.page(pool, tenant_id=t.id, page=120, page_size=50)
    assert deep.jobs
    last = deep.jobs[-1]
    conn = await db.connect(dsn)
    try:
        nodes = await _plan(conn, "page_all", t.id, None, None, None, None,
                            last.created_at, last.seq, 51, 0)
    finally:
        await conn.close()
    assert "Seq Scan" not in {n["Node Type"] for n in nodes}
    assert max((n["Actual Rows"] for n in nodes if n["Node Type"] == "Sort"), default=0) <= 51
    scans = [n for n in nodes if n["Node Type"].startswith("Index")]
    assert {n["Relation Name"] for n in scans} >= {"jobs"} | {
        name for name in await _partitions(pool) if await _rows_in(pool, name)}
    touched = sum(n["Shared Hit Blocks"] + n["Shared Read Blocks"] for n in scans)
    # About 2 per empty partition and a page where the rows are: 47 to 51
    # blocks across runs (index page splits and visibility vary), well under
    # the heap pages of the 6,000 rows before the cursor.
    assert touched <= 70, touched


async def _rows_in(pool: db.Pool, name: str) -> int:
    return int(await pool.fetchval(
        "SELECT count(*) FROM jobs_history WHERE tableoid = $1::regclass", name))


async def _plan(conn: Any, name: str, *args: object) -> list[dict[str, Any]]:
    raw = await conn.fetchval(
        f"EXPLAIN (FORMAT JSON, ANALYZE, BUFFERS, TIMING OFF) {listing.Q[name]}", *args)
    plan = json.loads(raw) if isinstance(raw, str) else raw  # the codec may have decoded it
    out: list[dict[str, Any]] = []
    todo = [plan[0]["Plan"]]
    while todo:
        n = todo.pop()
        out.append(n)
        todo += n.get("Plans", [])
    return out


async def test_reapers_of_several_queues_make_and_drop_partitions_side_by_side(
    pool: db.Pool,
) -> None:
    """Each JobQueue has its own elected reaper; on a shared database they
    race to make the same days and to drop the same ones."""
    made = await asyncio.gather(*(history.ensure_partitions(pool, retention_seconds=WEEK)
                                  for _ in range(6)))
    assert sum(made) == 3 and len(await _partitions(pool)) == 3
    await pool.execute("SELECT jobqueue_history_ensure(current_date - 20, current_date - 18)")
    dropped = await asyncio.gather(*(history.drop_expired(pool, retention_seconds=WEEK)
                                     for _ in range(4)))
    assert all(len(d) <= 3 for d in dropped) and any(dropped)
    assert len(await _partitions(pool)) == 3
