"""The backlog gate: when a submit must count the tenant's backlog exactly (pure)."""

from __future__ import annotations

from jobqueue.api.quotas import BacklogGate
from jobqueue.models import DepthRow, JobStatus, TenantId

A, B = TenantId("a"), TenantId("b")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def rows(**queued: int) -> list[DepthRow]:
    out = [DepthRow(TenantId(t), "q", JobStatus.QUEUED, n, 0.0) for t, n in queued.items()]
    # Running and DLQ jobs are not backlog.
    out.append(DepthRow(A, "q", JobStatus.RUNNING, 10_000, None))
    return out


def test_without_a_fresh_snapshot_every_submit_is_checked() -> None:
    clock = Clock()
    gate = BacklogGate(max_age_seconds=15, clock=clock)
    assert gate.must_check(A, 1_000_000)
    gate.snapshot(rows(a=10))
    assert not gate.must_check(A, 1_000_000)
    clock.now += 16
    assert gate.must_check(A, 1_000_000)


def test_a_tenant_near_its_limit_is_checked_and_one_far_below_is_not() -> None:
    gate = BacklogGate(max_age_seconds=15, clock=Clock())
    gate.snapshot(rows(a=920, b=10))
    assert not gate.must_check(B, 1000)
    assert gate.must_check(A, 1000)  # within the 10% margin
    assert not gate.must_check(A, 100_000)
    assert gate.must_check(B, 50)  # small quotas: always within the margin of 100
    assert gate.estimate(B) == 10


def test_accepted_jobs_count_until_the_next_snapshot() -> None:
    gate = BacklogGate(max_age_seconds=15, clock=Clock())
    gate.snapshot(rows(b=0))
    gate.accepted(B, 920)
    assert gate.estimate(B) == 920
    assert gate.must_check(B, 1000)
    gate.snapshot(rows(b=5))
    assert gate.estimate(B) == 5
    assert not gate.must_check(B, 1000, adding=100)
    assert gate.must_check(B, 1000, adding=900)
