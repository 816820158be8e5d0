"""Take back expired leases; prune finished jobs after their retention.

`Reaper` is a service (jobqueue.process): `run_once()` does one pass and
returns what it did. A pass is bounded (one batch of each), so it holds few
locks for a short time; when a batch comes back full, the loop goes again
at once instead of sleeping. `services()` is the elected reaper process:
the election, and the reaper, the schedules (reaper.scheduler) and the
depth gauges acting only while leader.

Every reaper update is compare-and-set on state and expiry (see
db/sql/maintenance.sql), so a job acked after a pass read it is left alone,
and two reapers at once (a split brain) cannot corrupt anything.
"""

from __future__ import annotations

from dataclasses import dataclass

from jobqueue import db
from jobqueue.db import maintenance
from jobqueue.models import JobStatus
from jobqueue.observability import metrics
from jobqueue.observability.logging import Logger
from jobqueue.process.depth import DepthRefresh
from jobqueue.process.service import Service, WhileLeader, run_forever
from jobqueue.process.supervise import Coros
from jobqueue.reaper.leader import Leadership
from jobqueue.reaper.scheduler import Scheduler
from jobqueue.settings import ReaperSettings


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


class Reaper(Service[ReapResult]):
    name = "reaper"
    component = "reaper"

    def __init__(self, conn: db.Executor, settings: ReaperSettings, *, log: Logger) -> None:
        self.conn = conn
        self.settings = settings
        self.log = log
        self.interval = settings.interval_seconds
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

    def delay(self, result: ReapResult) -> float:
        return 0.0 if result.full else self.interval


def services(reaper: Reaper, leadership: Leadership, *, log: Logger) -> Coros:
    """The elected reaper's tasks, for `supervise`: stopped last-first, so
    nothing is reaped or exported after leadership is released. The depth
    gauges have one exporter, the leader, so they are never double counted."""
    depth = DepthRefresh(conn=reaper.conn, component="reaper")
    s = reaper.settings
    fire = Scheduler(reaper.conn, grace_seconds=s.schedule_grace_seconds,
                     batch=s.schedule_batch, interval=s.interval_seconds, log=log)
    return {
        "leadership": leadership.run(),
        "reaper": run_forever(WhileLeader(reaper, leadership), log=log),
        "schedules": run_forever(WhileLeader(fire, leadership), log=log),
        "depth-refresh": run_forever(WhileLeader(depth, leadership), log=log),
    }
