"""Fire times (jobqueue.cron), DST edges included: pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobqueue import cron
from jobqueue.cron import MissedPolicy

GRACE = timedelta(minutes=5)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def fires(expr: str, zone: str, start: datetime, n: int) -> list[datetime]:
    c = cron.parse(expr, zone)
    out, t = [], start
    for _ in range(n):
        t = c.after(t)
        out.append(t)
    return out


def test_spring_forward_a_skipped_time_fires_once_right_after_the_jump() -> None:
    # Berlin, 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00 UTC).
    got = fires("30 2 * * *", "Europe/Berlin", utc(2026, 3, 27, 12), 3)
    assert got == [utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]


def test_fall_back_a_named_hour_fires_once_not_twice() -> None:
    # Berlin, 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
    got = fires("30 2 * * *", "Europe/Berlin", utc(2026, 10, 23, 12), 3)
    assert got == [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_fall_back_an_interval_fires_at_every_real_half_hour() -> None:
    got = fires("*/30 * * * *", "Europe/Berlin", utc(2026, 10, 24, 23, 15), 6)
    assert got == [utc(2026, 10, 24, 23, 30) + timedelta(minutes=30 * i) for i in range(6)]


def test_new_york_fall_back_and_spring_forward() -> None:
    # 2026-11-01 01:30 happens twice in New York; 2026-03-08 02:30 never.
    assert fires("30 1 * * *", "America/New_York", utc(2026, 10, 31, 12), 2) == [
        utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
    assert fires("30 2 * * *", "America/New_York", utc(2026, 3, 7, 12), 2) == [
        utc(2026, 3, 8, 7, 0), utc(2026, 3, 9, 6, 30)]


def test_fire_times_are_utc_and_strictly_after() -> None:
    c = cron.parse("0 * * * *")
    t = c.after(utc(2026, 1, 1, 12, 0))
    assert t == utc(2026, 1, 1, 13, 0) and t.tzinfo is UTC
    assert c.after(utc(2026, 1, 1, 12, 0, 30)) == t
    assert c.before(t) == utc(2026, 1, 1, 12, 0)


@pytest.mark.parametrize(
    ("expr", "zone", "phrase"),
    [
        ("61 * * * *", "UTC", "minute"),
        ("* * * *", "UTC", "5 fields"),
        ("* * * * * *", "UTC", "5 fields"),
        ("", "UTC", "characters"),
        ("0 0 30 2 *", "UTC", "day"),
        ("* * * * *", "Mars/Olympus", "time zone"),
        ("* * * * *", "../etc/passwd", "time zone"),
        ("* * * * *", "", "time zone"),
    ],
)
def test_bad_expressions_and_zones_are_refused(expr: str, zone: str, phrase: str) -> None:
    with pytest.raises(cron.BadSchedule, match=phrase):
        cron.parse(expr, zone)


def test_on_time_fires_each_fire_time_up_to_now() -> None:
    c = cron.parse("* * * * *")
    p = cron.plan(c, due=utc(2026, 1, 1, 12, 0), now=utc(2026, 1, 1, 12, 2, 10),
                  missed=MissedPolicy.SKIP, grace=GRACE)
    assert p.fires == (utc(2026, 1, 1, 12, 0), utc(2026, 1, 1, 12, 1), utc(2026, 1, 1, 12, 2))
    assert p.next_fire_at == utc(2026, 1, 1, 12, 3)
    assert not p.missed


def test_nothing_due_fires_nothing() -> None:
    c = cron.parse("0 * * * *")
    p = cron.plan(c, due=utc(2026, 1, 1, 13), now=utc(2026, 1, 1, 12, 59),
                  missed=MissedPolicy.RUN_ONCE, grace=GRACE)
    assert p.fires == () and p.next_fire_at == utc(2026, 1, 1, 13)


def test_missed_skip_drops_what_is_older_than_the_grace_and_fires_the_rest() -> None:
    c = cron.parse("* * * * *")
    # Down from 12:00 to 14:00: 12:00 .. 13:54 are more than 5 minutes late.
    p = cron.plan(c, due=utc(2026, 1, 1, 12), now=utc(2026, 1, 1, 14, 0, 30),
                  missed=MissedPolicy.SKIP, grace=GRACE)
    assert p.missed
    assert p.fires == tuple(utc(2026, 1, 1, 13, 56) + timedelta(minutes=i) for i in range(5))
    assert p.next_fire_at == utc(2026, 1, 1, 14, 1)


def test_missed_run_once_fires_one_job_for_the_latest_missed_time() -> None:
    c = cron.parse("0 * * * *")
    p = cron.plan(c, due=utc(2026, 1, 1, 3), now=utc(2026, 1, 2, 9, 30),
                  missed=MissedPolicy.RUN_ONCE, grace=GRACE)
    assert p.fires == (utc(2026, 1, 2, 9),)
    assert p.next_fire_at == utc(2026, 1, 2, 10)
    skipped = cron.plan(c, due=utc(2026, 1, 1, 3), now=utc(2026, 1, 2, 9, 30),
                        missed=MissedPolicy.SKIP, grace=GRACE)
    assert skipped.fires == () and skipped.next_fire_at == utc(2026, 1, 2, 10)


def test_a_pass_fires_at_most_limit_and_leaves_the_rest_for_the_next() -> None:
    c = cron.parse("* * * * *")
    now = utc(2026, 1, 1, 12, 4, 59)
    first = cron.plan(c, due=utc(2026, 1, 1, 12), now=now, missed=MissedPolicy.SKIP,
                      grace=GRACE, limit=3)
    assert len(first.fires) == 3 and first.next_fire_at == utc(2026, 1, 1, 12, 3)
    rest = cron.plan(c, due=first.next_fire_at, now=now, missed=MissedPolicy.SKIP,
                     grace=GRACE, limit=3)
    assert rest.fires == (utc(2026, 1, 1, 12, 3), utc(2026, 1, 1, 12, 4))


def test_missed_fire_times_across_a_dst_change_are_utc_instants() -> None:
    c = cron.parse("30 2 * * *", "Europe/Berlin")
    p = cron.plan(c, due=utc(2026, 10, 20, 0, 30), now=utc(2026, 10, 27, 12),
                  missed=MissedPolicy.RUN_ONCE, grace=GRACE)
    assert p.fires == (utc(2026, 10, 27, 1, 30),)
    assert p.next_fire_at == utc(2026, 10, 28, 1, 30)


def test_the_idempotency_key_names_the_schedule_and_the_utc_fire_time() -> None:
    t = cron.parse("30 2 * * *", "Europe/Berlin").after(utc(2026, 10, 24, 12))
    assert cron.idempotency_key("s1", t) == "schedule:s1:2026-10-25T00:30:00Z"
