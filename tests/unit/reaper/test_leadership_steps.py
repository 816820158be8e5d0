"""Leadership stepped one attempt at a time on an injected clock: no sleeps."""

from __future__ import annotations

from jobqueue.observability import logging as obslog
from jobqueue.process.service import WhileLeader
from jobqueue.reaper.leader import RENEW_DEADLINE, Leadership, NoElection
from jobqueue.reaper.reaper import Reaper
from jobqueue.settings import ReaperSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_leader_that_cannot_renew_in_time_stops_leading_then_wins_again() -> None:
    clock = Clock()
    ship = Leadership(NoElection("me"), log=obslog.get_logger("test"), clock=clock)
    changed = ship.changes()
    assert not ship.is_leader
    assert await ship.run_once() is True
    assert ship.is_leader and ship.transitions == 1 and changed.is_set()
    changed.clear()
    # The next attempt is due a third of the hold after this one began.
    clock.now += 1.0
    assert ship.delay(True) == ship.renew_every - 1.0
    # Paused past the renew deadline: no longer leader, whatever the backend says.
    clock.now += ship.elector.hold_seconds * RENEW_DEADLINE
    assert not ship.is_leader
    assert await ship.run_once() is True  # the deadline passed: lost, then won again
    assert ship.transitions == 2 and changed.is_set()


async def test_the_reaper_does_nothing_while_not_leader() -> None:
    ship = Leadership(NoElection("me"), log=obslog.get_logger("test"))
    # No connection at all: a pass that touched the database would fail.
    reaper = Reaper(None, ReaperSettings(interval_seconds=0.5),  # type: ignore[arg-type]
                    log=obslog.get_logger("test"))
    gated = WhileLeader(reaper, ship)
    assert await gated.run_once() is None
    assert gated.delay(None) == 0.5
