"""Listing in pages (db.listing): keyset cursors, filters, capped counts,
tenant scope, and plans that read an index in order at any depth."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from jobqueue import db
from jobqueue.db import listing
from jobqueue.models import Cursor, Job, JobStatus, TenantId
from tests import factories


async def _all_pages(
    pool: db.Pool, tenant_id: TenantId | None, where: listing.Filter, size: int
) -> list[Job]:
    out: list[Job] = []
    after: Cursor | None = None
    while True:
        page = await listing.page(pool, tenant_id=tenant_id, where=where, after=after,
                                  page_size=size)
        out += page.jobs
        if page.next is None:
            return out
        assert len(page.jobs) == size
        after = page.next


def _order(jobs: list[Job]) -> list[tuple[Any, int]]:
    return [(j.created_at, j.seq) for j in jobs]


async def test_cursor_pages_cover_every_job_once_newest_first(pool: db.Pool) -> None:
    # One batch shares one created_at: only seq tells its rows apart.
    t = await factories.tenant(pool)
    made = await factories.backlog(pool, t.id, 23)
    made += await factories.backlog(pool, t.id, 7)
    seen = await _all_pages(pool, t.id, listing.Filter(), size=4)
    assert [j.id for j in seen] == [j.id for j in sorted(made, key=lambda j: (j.created_at,
                                                                             j.seq), reverse=True)]
    assert _order(seen) == sorted(_order(seen), reverse=True)


async def test_offset_pages_agree_with_cursor_pages(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await factories.backlog(pool, t.id, 12)
    by_cursor = await _all_pages(pool, t.id, listing.Filter(), size=5)
    by_offset: list[Job] = []
    for n in (1, 2, 3):
        by_offset += (await listing.page(pool, tenant_id=t.id, page=n, page_size=5)).jobs
    assert [j.id for j in by_offset] == [j.id for j in by_cursor]
    past = await listing.page(pool, tenant_id=t.id, page=9, page_size=5)
    assert past.jobs == [] and past.total == 12 and past.next is None


async def test_each_filter_and_their_combination_pages_through_its_own_jobs(
    pool: db.Pool,
) -> None:
    t = await factories.tenant(pool)
    await factories.backlog(pool, t.id, 6, queue="q1", type="a")
    await factories.backlog(pool, t.id, 5, queue="q2", type="b")
    dead = await factories.dead_lettered(pool, t.id, 4, queue="q3", type="a")
    cases = {
        listing.Filter(status=JobStatus.DLQ): {j.id for j in dead},
        listing.Filter(queue="q2"): 5,
        listing.Filter(type="a"): 10,
        listing.Filter(type="a", status=JobStatus.QUEUED): 6,
        listing.Filter(queue="q3", type="b"): 0,
    }
    for where, want in cases.items():
        seen = await _all_pages(pool, t.id, where, size=3)
        if isinstance(want, set):
            assert {j.id for j in seen} == want, where
        else:
            assert len(seen) == want, where
        for j in seen:
            assert where.status in (None, j.status)
            assert where.queue in (None, j.queue)
            assert where.type in (None, j.type)
        total, exact = await listing.count(pool, tenant_id=t.id, where=where)
        assert (total, exact) == (len(seen), True), where


async def test_time_range_is_inclusive_below_and_exclusive_above(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    first = await factories.backlog(pool, t.id, 3)
    second = await factories.backlog(pool, t.id, 2)
    start = second[0].created_at
    assert start > first[0].created_at
    newer = await _all_pages(pool, t.id, listing.Filter(created_after=start), size=10)
    assert {j.id for j in newer} == {j.id for j in second}
    older = await _all_pages(pool, t.id, listing.Filter(created_before=start), size=10)
    assert {j.id for j in older} == {j.id for j in first}
    empty = listing.Filter(created_after=start + timedelta(days=1))
    assert (await listing.page(pool, tenant_id=t.id, where=empty)).jobs == []


async def test_counts_are_exact_up_to_the_cap_then_at_least(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await factories.backlog(pool, t.id, 30)
    assert await listing.count(pool, tenant_id=t.id, where=listing.Filter(), cap=31) == (30, True)
    assert await listing.count(pool, tenant_id=t.id, where=listing.Filter(), cap=30) == (30, False)
    assert await listing.count(pool, tenant_id=t.id, where=listing.Filter(), cap=10) == (10, False)


async def test_a_tenant_pages_only_its_own_jobs_and_the_admin_pages_all(pool: db.Pool) -> None:
    a = await factories.tenant(pool)
    b = await factories.tenant(pool)
    mine = await factories.backlog(pool, a.id, 5)
    theirs = await factories.backlog(pool, b.id, 6)
    seen_a = await _all_pages(pool, a.id, listing.Filter(), size=2)
    assert {j.id for j in seen_a} == {j.id for j in mine}
    # A cursor taken from b's listing reaches none of b's jobs from a's scope.
    b_first = await listing.page(pool, tenant_id=b.id, page_size=1)
    assert b_first.next is not None
    from_b = await listing.page(pool, tenant_id=a.id, after=b_first.next, page_size=100)
    assert {j.tenant_id for j in from_b.jobs} <= {a.id}
    everyone = await _all_pages(pool, None, listing.Filter(), size=4)
    assert {j.id for j in everyone} == {j.id for j in mine + theirs}
    assert _order(everyone) == sorted(_order(everyone), reverse=True)


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = [plan]
    for child in plan.get("Plans", []):
        out += _nodes(child)
    return out


async def _plan(conn: Any, name: str, *args: object) -> list[dict[str, Any]]:
    sql = listing.Q[name]
    found = await conn.fetchval(f"EXPLAIN (FORMAT JSON, ANALYZE, BUFFERS, TIMING OFF) {sql}", *args)
    # The connection's json codec may already have decoded it.
    plan = json.loads(found) if isinstance(found, str) else found
    return _nodes(plan[0]["Plan"])


async def test_a_deep_filtered_page_reads_its_index_from_the_cursor(
    dsn: str, pool: db.Pool
) -> None:
    """The plan that matters at millions of rows: no sort of the history, no seq scan,
    and a page deep in the history reads about one page of index entries."""
    t = await factories.tenant(pool, max_concurrent=10_000)
    await factories.dead_lettered(pool, t.id, 300, queue="q")
    await factories.backlog(pool, t.id, 5000, queue="q")
    await pool.execute("ANALYZE jobs")
    deep = await listing.page(pool, tenant_id=t.id, page=90, page_size=50)
    assert deep.jobs
    last = deep.jobs[-1]
    conn = await db.connect(dsn)
    try:
        for name, index, status, queue in [
            ("page_all", "jobs_tenant_recent", None, None),
            ("page_by_status", "jobs_tenant_status_recent", "dlq", None),
            ("page_by_queue", "jobs_tenant_queue_recent", None, "q"),
        ]:
            nodes = await _plan(conn, name, t.id, status, queue, None, None,
                                last.created_at, last.seq, 51, 0)
            jobs_scans = {n["Node Type"] for n in nodes if n.get("Relation Name") == "jobs"}
            assert "Seq Scan" not in jobs_scans, (name, jobs_scans)
            # The only sort merges the tenants' pages: a page's rows, never the history.
            sorts = [n["Actual Rows"] for n in nodes if n["Node Type"] == "Sort"]
            assert max(sorts, default=0) <= 51, (name, sorts)
            scans = [n for n in nodes if n.get("Index Name") == index]
            assert scans, (name, [n.get("Index Name") for n in nodes])
            assert max(n["Actual Rows"] for n in scans) <= 51, name
            # Started at the cursor: a scan from the newest row down to it
            # would touch the ~25 index pages of the 4,500 rows above it.
            touched = sum(n["Shared Hit Blocks"] + n["Shared Read Blocks"] for n in scans)
            assert touched <= 15, (name, touched)
    finally:
        await conn.close()
