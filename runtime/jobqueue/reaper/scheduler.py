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

A fire time meets the doors a submission meets, in the same statement:
a disabled tenant or a backlog at the tenant's max_queued refuses it (the
overlap policy may too). Such a fire time is dropped, counted in
`schedule_fires_total{outcome}` and on the schedule (last_skipped_at,
last_skip_reason, skipped_fires), and warned about once when refusals
start; it is never retried, so a full backlog costs one statement per fire
time, not a loop. The API's rate limit does not apply (invariant 13).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from jobqueue import cron, db
from jobqueue.db import schedules
from jobqueue.observability import metrics
from jobqueue.observability.logging import Logger
from jobqueue.process.service import Service
from jobqueue.scheduling import Schedule, SkipReason

# An expression the database holds but this version cannot evaluate (a zone
# gone from tzdata) is retried this much later instead of blocking the batch.
BROKEN_RETRY = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class FireResult:
    fired: int = 0
    overlapped: int = 0
    refused: int = 0  # fire times a disabled tenant or a full backlog refused
    missed: int = 0  # schedules that found missed fire times
    full: bool = False

    @property
    def did_something(self) -> bool:
        return bool(self.fired or self.overlapped or self.refused or self.missed)

    def as_dict(self) -> dict[str, int]:
        return {"fired": self.fired, "overlapped": self.overlapped, "refused": self.refused,
                "missed": self.missed}


def already_refused(s: Schedule, reason: SkipReason) -> bool:
    """The schedule's fires were refused for `reason` since it last fired:
    said once when it starts, not at every fire time."""
    return (s.last_skip_reason is reason and s.last_skipped_at is not None
            and (s.last_fire_at is None or s.last_skipped_at > s.last_fire_at))


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
        self.totals = {"fired": 0, "overlapped": 0, "refused": 0, "missed": 0}

    async def run_once(self) -> FireResult:
        found = await schedules.due(self.conn, limit=self.batch)
        counts = Counter[str]()
        for d in found:
            counts.update(await self._fire(d))
        result = FireResult(counts["fired"], counts["overlapped"], counts["refused"],
                            counts["missed"], full=len(found) >= self.batch)
        for key, value in result.as_dict().items():
            self.totals[key] += value
        if result.did_something:
            self.log.info("schedules fired", **result.as_dict())
        return result

    def delay(self, result: FireResult) -> float:
        return 0.0 if result.full else self.interval

    async def _fire(self, d: schedules.Due) -> Counter[str]:
        s = d.schedule
        counts = Counter[str]()
        try:
            parsed = cron.parse(s.spec.cron, s.spec.timezone)
            plan = cron.plan(parsed, due=s.next_fire_at, now=d.now, missed=s.spec.missed,
                             grace=self.grace, limit=self.fires_per_schedule)
        except cron.BadSchedule as exc:
            self.log.error("schedule cannot be evaluated; retrying later",
                           tenant_id=s.tenant_id, schedule=s.spec.name, error=str(exc))
            await schedules.fire(self.conn, schedule_id=s.id, expected=s.next_fire_at,
                                 fire_time=None, next_fire_at=d.now + BROKEN_RETRY)
            return counts
        if plan.missed:
            counts["missed"] += 1
            metrics.SCHEDULE_FIRES.labels("missed").inc()
            self.log.warning("schedule missed fire times", tenant_id=s.tenant_id,
                             schedule=s.spec.name, since=s.next_fire_at.isoformat(),
                             policy=s.spec.missed.value)
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
            self._count(s, fire_time, done, counts)
            expected = following
        return counts

    def _count(
        self, s: Schedule, fire_time: datetime | None, done: schedules.Fired,
        counts: Counter[str],
    ) -> None:
        if done.job_id is not None:
            counts["fired"] += 1
            metrics.SCHEDULE_FIRES.labels("fired").inc()
            return
        if done.skipped is None:
            return  # only advanced
        metrics.SCHEDULE_FIRES.labels(done.skipped.value).inc()  # the reason is the outcome
        if done.skipped is SkipReason.OVERLAP:
            counts["overlapped"] += 1
            return
        # Dropped, not retried: the next fire time meets the same door.
        if not counts["refused"] and not already_refused(s, done.skipped):
            self.log.warning("schedule fire refused; fire times are dropped until it clears",
                             tenant_id=s.tenant_id, schedule=s.spec.name,
                             reason=done.skipped.value,
                             fire_time=fire_time.isoformat() if fire_time else None)
        counts["refused"] += 1
