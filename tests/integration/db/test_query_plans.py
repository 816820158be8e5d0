"""The lease path must use its partial index under a real backlog, even when
the planner was misled by statistics taken on an empty table (a trap seen in
production queues on Postgres). auto_explain shows the plans of the
statements inside jobqueue_lease(), which EXPLAIN of the call cannot."""

from __future__ import annotations

import json
from typing import Any

from jobqueue import db
from jobqueue.db import leases
from jobqueue.models import WorkerId
from tests import factories


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = [plan]
    for child in plan.get("Plans", []):
        out += _nodes(child)
    return out


async def _lease_plans(dsn: str) -> list[dict[str, Any]]:
    conn = await db.connect(dsn)
    notices: list[str] = []
    conn.add_log_listener(lambda _c, msg: notices.append(msg.message))
    try:
        await conn.execute("LOAD 'auto_explain'")
        for setting in (
            "auto_explain.log_min_duration = 0",
            "auto_explain.log_nested_statements = on",
            "auto_explain.log_format = json",
            "auto_explain.log_analyze = on",
            "auto_explain.log_timing = off",
            "auto_explain.log_level = notice",
            "client_min_messages = notice",
        ):
            await conn.execute(f"SET {setting}")
        for _ in range(8):  # past the point where cached plans turn generic
            got = await leases.lease(conn, queue="default", worker_id=WorkerId("w"), limit=10,
                                     lease_seconds=60)
            assert len(got) == 10
    finally:
        await conn.close()
    plans = []
    for msg in notices:
        _, _, body = msg.partition("\n")
        if body.strip().startswith("{"):
            plans.append(json.loads(body)["Plan"])
    return plans


async def test_lease_reads_the_ready_index_under_a_large_backlog(dsn: str, pool: db.Pool) -> None:
    t = await factories.tenant(pool, max_concurrent=10_000)
    await pool.execute("ANALYZE jobs")  # statistics of an empty table
    await factories.backlog(pool, t.id, 50_000)
    plans = await _lease_plans(dsn)
    assert plans, "auto_explain produced no plans"
    scans = [n for p in plans for n in _nodes(p) if n.get("Relation Name") == "jobs"]
    assert scans
    seq = [n for n in scans if n["Node Type"] == "Seq Scan"]
    assert seq == [], f"sequential scans of jobs on the lease path: {seq}"
    assert any(n.get("Index Name") == "jobs_ready" for n in scans)


def _ready_rows_read(plans: list[dict[str, Any]]) -> list[int]:
    """Rows each scan of the ready index returned, over all its loops."""
    return [
        int(n["Actual Rows"] * n.get("Actual Loops", 1))
        for p in plans
        for n in _nodes(p)
        if n.get("Index Name") == "jobs_ready"
    ]


async def test_lease_reads_only_the_heads_of_the_ready_index_with_stale_statistics(
    dsn: str, pool: db.Pool
) -> None:
    """A burst lands before autovacuum's next ANALYZE: the planner believes
    the table is empty. Using the index is not enough then; a probe that
    reads the whole backlog through it (a semi-join turned into a hash of
    every queued row) costs milliseconds per lease and grows with the
    backlog. Each lease may read a few index entries per tenant, never the
    backlog."""
    owners = [await factories.tenant(pool, max_concurrent=10_000) for _ in range(3)]
    await pool.execute("ANALYZE jobs")  # statistics of an empty table
    for t in owners:
        await factories.backlog(pool, t.id, 20_000)
    plans = await _lease_plans(dsn)
    read = _ready_rows_read(plans)
    assert read, "no scan of jobs_ready on the lease path"
    # 8 leases of 10 over 3 tenants: a head probe reads 1 row per tenant, the
    # pick at most 10 per tenant. 60,000 queued rows must stay out of it.
    assert max(read) <= 50, f"rows read from jobs_ready per scan: {sorted(read)[-5:]}"
