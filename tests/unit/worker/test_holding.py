"""Holding: one record per held job, and the slot count that follows it."""

from __future__ import annotations

from jobqueue.models import LeaseToken
from jobqueue.worker.context import Controls
from jobqueue.worker.holding import Holding, Stage
from tests.factories import lease


def test_a_job_takes_a_slot_until_its_handler_returns_and_is_held_until_settled() -> None:
    held = Holding(concurrency=2)
    a, b = held.add(lease(), Controls()), held.add(lease(), Controls())
    assert held.free_slots == 0 and len(held) == 2
    held.finish(a)
    held.finish(a)  # twice: still one slot
    assert held.free_slots == 1 and a.lease.job_id in held and a.stage is Stage.FINISHED
    assert held.leases() == [(a.lease.job_id, a.lease.token), (b.lease.job_id, b.lease.token)]
    assert held.unfinished() == [b]
    held.forget(a)
    assert a.lease.job_id not in held and held.free_slots == 1
    held.forget(b)  # lost while running: its slot comes back too
    assert held.free_slots == 2 and len(held) == 0 and b.stage is Stage.GONE


def test_a_lease_is_found_only_under_its_own_token() -> None:
    held = Holding(concurrency=1)
    job = held.add(lease(), Controls())
    assert held.get(job.lease.job_id, job.lease.token) is job
    assert held.get(job.lease.job_id, LeaseToken(job.lease.job_id)) is None
    assert held.get(job.lease.job_id) is job
    held.forget(job)
    assert held.get(job.lease.job_id, job.lease.token) is None
