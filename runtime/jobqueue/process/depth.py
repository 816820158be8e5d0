"""Queue depth gauges refreshed from the database, written once for the
API and the elected reaper.

One grouped query over partial indexes per interval, whatever the scrape
rate. A failed refresh never ends the service (metrics must not take a
process down): `run_forever` counts and retries it, and the gauges keep
their last values meanwhile (`job_queue_depth_refreshed_timestamp_seconds`
shows how old they are).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from jobqueue import db
from jobqueue.db import stats
from jobqueue.models import DepthRow
from jobqueue.observability import metrics
from jobqueue.process.service import Service

INTERVAL_SECONDS = 5.0


@dataclass(eq=False, kw_only=True)
class DepthRefresh(Service[int]):
    conn: db.Executor
    component: str | None
    interval: float = INTERVAL_SECONDS
    timeout: float | None = None
    on_rows: Callable[[Sequence[DepthRow]], None] | None = None
    published: bool = field(default=False, init=False)

    name = "depth-refresh"
    retry_on = (Exception,)

    async def run_once(self) -> int:
        """Refresh the gauges (and `on_rows`); the number of rows read."""
        async with asyncio.timeout(self.timeout):
            rows = await stats.depth(self.conn)
        metrics.refresh_depth(rows)
        self.published = True
        if self.on_rows is not None:
            self.on_rows(rows)
        return len(rows)

    def standby(self) -> None:
        """Not leader: drop the gauges, the leader exports them now (one
        exporter, no double counting)."""
        if self.published:
            metrics.refresh_depth([])
            self.published = False
