"""When a schedule fires (pure): cron expressions in a time zone.

Expressions are the five fields of Debian's cron (minute, hour, day of
month, month, day of week; names, ranges, steps, `L`, `#`), evaluated by
cronsim, which follows Debian's cron through daylight-saving changes: a time
the clocks skip fires once, at the first minute after the jump (02:30 on the
spring-forward night fires at 03:00); a time the clocks pass twice fires once
when the expression names the hour (`30 1 * * *`) and at both instants when
it does not (`*/30 * * * *`, every real half hour). Fire times leave here as
UTC instants, so the database and the idempotency key never see local time.

`plan` decides what one pass of the scheduler fires (docs/design.md,
invariant 13): every fire time up to `now` that is at most `grace` late
fires on its own; older ones were missed (the reaper was down), and are
either dropped (`skip`) or collapsed into one job for the latest of them
(`run_once`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

MAX_EXPRESSION_LENGTH: Final = 200


class MissedPolicy(enum.StrEnum):
    SKIP = "skip"
    RUN_ONCE = "run_once"


class OverlapPolicy(enum.StrEnum):
    ALLOW = "allow"
    SKIP = "skip"  # no new fire while the previous fire's job is unfinished


class BadSchedule(ValueError):
    """An expression or zone that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Cron:
    expression: str
    zone: ZoneInfo

    def after(self, t: datetime) -> datetime:
        """The first fire time strictly after `t` (aware), in UTC."""
        try:
            found = next(CronSim(self.expression, t.astimezone(self.zone)))
        except StopIteration:
            raise BadSchedule(f"{self.expression!r} does not fire within 50 years") from None
        return found.astimezone(UTC)

    def before(self, t: datetime) -> datetime | None:
        """The last fire time strictly before `t`, in UTC (None within 50 years)."""
        try:
            found = next(CronSim(self.expression, t.astimezone(self.zone), reverse=True))
        except StopIteration:
            return None
        return found.astimezone(UTC)


def parse(expression: str, timezone: str = "UTC") -> Cron:
    """A usable Cron, or BadSchedule naming the problem."""
    if not isinstance(expression, str) or not 1 <= len(expression) <= MAX_EXPRESSION_LENGTH:
        raise BadSchedule(f"cron must be 1 to {MAX_EXPRESSION_LENGTH} characters")
    if len(expression.split()) != 5:
        raise BadSchedule(f"cron {expression!r} must have 5 fields: minute hour day month weekday")
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise BadSchedule(
            f"unknown time zone {timezone!r} (an IANA name, e.g. Europe/Berlin)"
        ) from None
    try:
        CronSim(expression, datetime(2000, 1, 1, tzinfo=zone))
    except CronSimError as exc:
        raise BadSchedule(f"cron {expression!r}: {exc}") from None
    cron = Cron(expression, zone)
    cron.after(datetime(2000, 1, 1, tzinfo=UTC))  # one that never fires is refused too
    return cron


@dataclass(frozen=True, slots=True)
class Plan:
    fires: tuple[datetime, ...]  # fire times to fire now, oldest first
    next_fire_at: datetime  # the first fire time left for a later pass
    missed: bool = False  # fire times older than the grace were found


def plan(
    cron: Cron,
    *,
    due: datetime,
    now: datetime,
    missed: MissedPolicy,
    grace: timedelta,
    limit: int = 100,
) -> Plan:
    """What to fire at `now` for a schedule whose next fire time is `due`.

    At most `limit` fires; the rest are left for the next pass (whose
    `due` is then this plan's `next_fire_at`), so a pass stays bounded.
    """
    fires: list[datetime] = []
    t = due
    late = False
    cutoff = now - grace
    if t < cutoff:
        late = True
        last_missed = cron.before(cutoff)  # not None: `due` itself is one
        if last_missed is not None and last_missed >= t:
            if missed is MissedPolicy.RUN_ONCE:
                fires.append(last_missed)
            t = cron.after(last_missed)
    while t <= now and len(fires) < limit:
        fires.append(t)
        t = cron.after(t)
    return Plan(fires=tuple(fires), next_fire_at=t, missed=late)


def idempotency_key(schedule_id: object, fire_time: datetime) -> str:
    """The key of the job fired for `fire_time`: the same on every reaper."""
    return f"schedule:{schedule_id}:{fire_time.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
