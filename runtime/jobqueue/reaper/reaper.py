"""Take back expired leases; prune finished jobs after their retention.

`Reaper.run_once()` does one pass and returns what it did; `run()` is the
thin loop around it, acting only while `Leadership.is_leader`. A pass is
bounded (one batch of each), so it holds few locks for a short time; when
a batch comes back full, the loop goes again at once instead of sleeping.

Every reaper update is compare-and-set on state and expiry (see
db/sql/maintenance.sql), so a job acked after a pass read it is left alone,
and two reapers at once (a split brain) cannot corrupt anything.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from jobqueue import db, errors
from jobqueue.db import maintenance, stats
from jobqueue.models import JobStatus
from jobqueue.observability import metrics
from jobqueue.observability.logging import Logger
from jobqueue.process.backoff import Backoff
from jobqueue.reaper.leader import Leadership
from jobqueue.settings import ReaperSettings

# Queue depth gauges, leader only (one exporter, no double counting).
DEPTH_REFRESH_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class ReapResult:
    requeued: int = 0
    dead_lettered: int = 0
    pruned: int = 0
    full: bool = False  # a batch came back full: there is probably more to do

    @property
    def did_something(self) -> bool:
        return bool(self.requeued or self.dead_lettered or self.pruned)

    def as_dict(self) -> dict[str, int]:
        return {"requeued": self.requeued, "dead_lettered": self.dead_lettered,
                "pruned": self.pruned}


class Reaper:
    def __init__(self, conn: db.Executor, settings: ReaperSettings, *, log: Logger) -> None:
        self.conn = conn
        self.settings = settings
        self.log = log
        self.totals = {"requeued": 0, "dead_lettered": 0, "pruned": 0}

    async def run_once(self, *, prune: bool = True) -> ReapResult:
        reaped = await maintenance.reap_expired(self.conn, limit=self.settings.batch)
        requeued = dead = 0
        for t in reaped:
            metrics.LEASE_EXPIRED.labels(t.tenant_id).inc()
            if t.status is JobStatus.DLQ:
                dead += 1
                # No worker will report this one: it died holding the job.
                metrics.JOBS_COMPLETED.labels(t.tenant_id, "dlq").inc()
            else:
                requeued += 1
        pruned = []
        if prune:
            pruned = await maintenance.prune_finished(
                self.conn, older_than_seconds=self.settings.retention_seconds,
                limit=self.settings.prune_batch,
            )
        result = ReapResult(
            requeued=requeued, dead_lettered=dead, pruned=len(pruned),
            full=len(reaped) >= self.settings.batch or len(pruned) >= self.settings.prune_batch,
        )
        for key, value in result.as_dict().items():
            self.totals[key] += value
        if result.did_something:
            self.log.info("reaped", **result.as_dict(),
                          expired=[str(t.job_id) for t in reaped[:20]])
        return result

    async def run(self, leadership: Leadership) -> None:
        """Until cancelled. Acts only while leader; database errors back off."""
        backoff = Backoff(base=0.5, cap=10.0)
        next_depth = 0.0
        published = False
        while True:
            if not leadership.is_leader:
                if published:
                    metrics.refresh_depth([])  # the new leader exports them now
                    published = False
                await leadership.wait_changed(self.settings.interval_seconds)
                continue
            try:
                result = await self.run_once()
                if time.monotonic() >= next_depth and leadership.is_leader:
                    metrics.refresh_depth(await stats.depth(self.conn))
                    published = True
                    next_depth = time.monotonic() + DEPTH_REFRESH_SECONDS
                backoff.reset()
            except errors.DatabaseUnavailable as exc:
                metrics.DB_ERRORS.labels("reaper").inc()
                delay = backoff.next()
                self.log.warning("database unavailable, will retry", error=str(exc),
                                 retry_in=round(delay, 2))
                await asyncio.sleep(delay)
                continue
            if not result.full:
                await leadership.wait_changed(self.settings.interval_seconds)
