"""Fire schedules: the elected reaper's service for docs/design.md, invariant 13.

A pass reads the schedules whose next fire time has come (on the database
clock), asks the pure `jobqueue.cron.plan` what to fire, and fires each
fire time in a statement of its own, compare-and-set on the next fire time
(db/sql/schedules.sql). So:

- two reapers at once (a split brain, or an old leader finishing a pass)
  fire nothing twice: the second one's compare-and-set finds the schedule
  moved on, and the job's idempotency key (schedule, fire time) would
  refuse it anyway;
- a reaper killed between two statements leaves the schedule at the first
  fire time it did not fire: the next leader fires exactly the rest.
  Nothing is skipped as long as a new leader takes over within the grace
  (`schedule_grace_seconds`, far above the leader lease).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from jobqueue import cron, db
from jobqueue.db import schedules
from jobqueue.observability import metrics
from jobqueue.observability.logging import Logger
from jobqueue.process.service import Service

# An expression the database holds but this version cannot evaluate (a zone
# gone from tzdata) is retried this much later instead of blocking the batch.
BROKEN_RETRY = timedelta(hours=1)


# A refused fire's reason (db/sql/schedules.sql `fire`) -> its metric outcome.
_OUTCOME = {"overlap": "overlap", "backlog_full": "backlog", "tenant_disabled": "disabled"}


@dataclass(frozen=True, slots=True)
class FireResult:
    fired: int = 0
    overlapped: int = 0
    missed: int = 0  # schedules that found missed fire times
    refused: int = 0  # fire times not fired: the tenant's backlog full, or it is disabled
    full: bool = False

    @property
    def did_something(self) -> bool:
        return bool(self.fired or self.overlapped or self.missed or self.refused)

    def as_dict(self) -> dict[str, int]:
        return {"fired": self.fired, "overlapped": self.overlapped, "missed": self.missed,
                "refused": self.refused}


class Scheduler(Service[FireResult]):
    name = "schedules"
    component = "reaper"

    def __init__(
        self, conn: db.Executor, *, grace_seconds: float, batch: int, interval: float,
        log: Logger, fires_per_schedule: int = 100,
    ) -> None:
        self.conn = conn
        self.grace = timedelta(seconds=grace_seconds)
        self.batch = batch
        self.interval = interval
        self.log = log
        self.fires_per_schedule = fires_per_schedule
        self.totals = dict.fromkeys(FireResult().as_dict(), 0)

    async def run_once(self) -> FireResult:
        found = await schedules.due(self.conn, limit=self.batch)
        counts = dict.fromkeys(self.totals, 0)
        for d in found:
            for key, n in (await self._fire(d)).items():
                counts[key] += n
        result = FireResult(**counts, full=len(found) >= self.batch)
        for key, value in result.as_dict().items():
            self.totals[key] += value
        if result.did_something:
            self.log.info("schedules fired", **result.as_dict())
        return result

    def delay(self, result: FireResult) -> float:
        return 0.0 if result.full else self.interval

    async def _fire(self, d: schedules.Due) -> dict[str, int]:
        s = d.schedule
        try:
            parsed = cron.parse(s.spec.cron, s.spec.timezone)
            plan = cron.plan(parsed, due=s.next_fire_at, now=d.now, missed=s.spec.missed,
                             grace=self.grace, limit=self.fires_per_schedule)
        except cron.BadSchedule as exc:
            self.log.error("schedule cannot be evaluated; retrying later",
                           tenant_id=s.tenant_id, schedule=s.spec.name, error=str(exc))
            await schedules.fire(self.conn, schedule_id=s.id, expected=s.next_fire_at,
                                 fire_time=None, next_fire_at=d.now + BROKEN_RETRY)
            return {}
        if plan.missed:
            metrics.SCHEDULE_FIRES.labels("missed").inc()
            self.log.warning("schedule missed fire times", tenant_id=s.tenant_id,
                             schedule=s.spec.name, since=s.next_fire_at.isoformat(),
                             policy=s.spec.missed.value)
        counts = {"fired": 0, "overlapped": 0, "missed": int(plan.missed), "refused": 0}
        expected = s.next_fire_at
        steps: list[tuple[datetime | None, datetime]] = [
            (t, plan.fires[i + 1] if i + 1 < len(plan.fires) else plan.next_fire_at)
            for i, t in enumerate(plan.fires)
        ] or [(None, plan.next_fire_at)]
        for fire_time, following in steps:
            done = await schedules.fire(self.conn, schedule_id=s.id, expected=expected,
                                        fire_time=fire_time, next_fire_at=following)
            if done is None:
                break  # another reaper moved it on: it owns the rest
            if done.job_id is not None:
                counts["fired"] += 1
                metrics.SCHEDULE_FIRES.labels("fired").inc()
            elif done.skipped is not None:
                counts["overlapped" if done.overlapped else "refused"] += 1
                metrics.SCHEDULE_FIRES.labels(_OUTCOME[done.skipped]).inc()
                if not done.overlapped:
                    self.log.warning("scheduled fire refused", tenant_id=s.tenant_id,
                                     schedule=s.spec.name, reason=done.skipped,
                                     fire_time=fire_time.isoformat() if fire_time else None)
            expected = following
        return counts
