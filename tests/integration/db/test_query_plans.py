"""The lease path must use its partial index under a real backlog, even when
the planner was misled by statistics taken on an empty table (a trap seen in
production queues on Postgres)."""

from __future__ import annotations

from typing import Any

from jobqueue import db
from tests import factories
from tests.integration.db import plans


async def test_lease_reads_the_ready_index_under_a_large_backlog(dsn: str, pool: db.Pool) -> None:
    t = await factories.tenant(pool, max_concurrent=10_000)
    await pool.execute("ANALYZE jobs")  # statistics of an empty table
    await factories.backlog(pool, t.id, 50_000)
    found = await plans.lease_plans(dsn)  # 8 rounds: past the point where plans turn generic
    assert found, "auto_explain produced no plans"
    scans = [n for p in found for n in plans.nodes(p) if n.get("Relation Name") == "jobs"]
    assert scans
    seq = [n for n in scans if n["Node Type"] == "Seq Scan"]
    assert seq == [], f"sequential scans of jobs on the lease path: {seq}"
    assert any(n.get("Index Name") == "jobs_ready" for n in scans)


def _ready_rows_read(found: list[dict[str, Any]]) -> list[int]:
    """Rows each scan of the ready index returned, over all its loops."""
    return [
        int(n["Actual Rows"] * n.get("Actual Loops", 1))
        for p in found
        for n in plans.nodes(p)
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
    read = _ready_rows_read(await plans.lease_plans(dsn))
    assert read, "no scan of jobs_ready on the lease path"
    # 8 leases of 10 over 3 tenants: a probe reads 1 entry per tenant, a
    # count or a pick at most 10 per tenant. 60,000 queued rows stay out.
    assert max(read) <= 50, f"rows read from jobs_ready per scan: {sorted(read)[-5:]}"
