"""The plans of the statements inside jobqueue_lease(), with actual row
counts, through auto_explain (EXPLAIN of the call cannot show them)."""

from __future__ import annotations

import json
from typing import Any

from jobqueue import db
from jobqueue.db import leases
from jobqueue.models import WorkerId


def nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out = [plan]
    for child in plan.get("Plans", []):
        out += nodes(child)
    return out


async def lease_plans(dsn: str, *, limit: int = 10, rounds: int = 8) -> list[dict[str, Any]]:
    """Lease `rounds` full batches of `limit` and return every plan run."""
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
        for _ in range(rounds):
            got = await leases.lease(conn, queue="default", worker_id=WorkerId("w"),
                                     limit=limit, lease_seconds=60)
            assert len(got) == limit
    finally:
        await conn.close()
    plans = []
    for msg in notices:
        _, _, body = msg.partition("\n")
        if body.strip().startswith("{"):
            plans.append(json.loads(body)["Plan"])
    return plans
