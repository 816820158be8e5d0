"""Take back expired leases; move finished jobs to history; drop history
past retention a day at a time (docs/design.md, "History").

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
from jobqueue.db import history, maintenance
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
    archived: int = 0  # finished jobs moved from the hot table to history
    expired: int = 0  # of those, past retention already: gone, not kept
    partitions_dropped: int = 0  # days of history dropped whole
    full: bool = False  # a batch came back full: there is probably more to do

    @property
    def did_something(self) -> bool:
        return any(self.as_dict().values())

    def as_dict(self) -> dict[str, int]:
        return {"requeued": self.requeued, "dead_lettered": self.dead_lettered,
                "archived": self.archived, "expired": self.expired,
                "partitions_dropped": self.partitions_dropped}


class Reaper(Service[ReapResult]):
    name = "reaper"
    component = "reaper"

    def __init__(self, conn: db.Executor, settings: ReaperSettings, *, log: Logger) -> None:
        self.conn = conn
        self.settings = settings
        self.log = log
        self.interval = settings.interval_seconds
        self.totals = dict.fromkeys(ReapResult().as_dict(), 0)

    async def run_once(self, *, archive: bool = True) -> ReapResult:
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
        moved, dropped = (await self._history()) if archive else (history.Archived(0, 0), [])
        result = ReapResult(
            requeued=requeued, dead_lettered=dead, archived=moved.moved,
            expired=moved.moved - moved.kept, partitions_dropped=len(dropped),
            full=len(reaped) >= self.settings.batch or moved.moved >= self.settings.archive_batch,
        )
        for key, value in result.as_dict().items():
            self.totals[key] += value
        if result.did_something:
            self.log.info("reaped", **result.as_dict(),
                          expired_leases=[str(t.job_id) for t in reaped[:20]],
                          partitions=dropped)
        return result

    async def _history(self) -> tuple[history.Archived, list[str]]:
        """Partitions ahead, one batch into them, then whole days dropped."""
        s = self.settings
        keep = s.retention_seconds
        await history.ensure_partitions(self.conn, retention_seconds=keep)
        moved = await history.archive(
            self.conn, after_seconds=min(s.archive_after_seconds, keep),
            retention_seconds=keep, limit=s.archive_batch,
        )
        dropped = await history.drop_expired(self.conn, retention_seconds=keep)
        if moved.moved:
            metrics.HISTORY_ARCHIVED.inc(moved.kept)
            metrics.HISTORY_EXPIRED.inc(moved.moved - moved.kept)
        if dropped:
            metrics.HISTORY_PARTITIONS_DROPPED.inc(len(dropped))
        return moved, dropped

    def delay(self, result: ReapResult) -> float:
        return 0.0 if result.full else self.interval


def scheduler_for(reaper: Reaper, *, log: Logger) -> Scheduler:
    s = reaper.settings
    return Scheduler(reaper.conn, grace_seconds=s.schedule_grace_seconds,
                     batch=s.schedule_batch, interval=s.interval_seconds, log=log)


async def once(reaper: Reaper, *, log: Logger) -> dict[str, object]:
    """One pass of everything the leader does (`jobqueue reaper --once`):
    leases and history, then the schedules due, each its own bounded pass."""
    reaped = await reaper.run_once()
    fired = await scheduler_for(reaper, log=log).run_once()
    return {**reaped.as_dict(), "schedules": fired.as_dict()}


def services(reaper: Reaper, leadership: Leadership, *, log: Logger) -> Coros:
    """The elected reaper's tasks, for `supervise`: stopped last-first, so
    nothing is reaped or exported after leadership is released. The depth
    gauges have one exporter, the leader, so they are never double counted."""
    depth = DepthRefresh(conn=reaper.conn, component="reaper")
    fire = scheduler_for(reaper, log=log)
    return {
        "leadership": leadership.run(),
        "reaper": run_forever(WhileLeader(reaper, leadership), log=log),
        "schedules": run_forever(WhileLeader(fire, leadership), log=log),
        "depth-refresh": run_forever(WhileLeader(depth, leadership), log=log),
    }
