"""Full-jitter backoff: bounds, growth, cap, and the reconnect helper."""

from __future__ import annotations

import random

import pytest

from jobqueue.process import backoff


def test_ceiling_doubles_per_attempt_until_the_cap() -> None:
    got = [backoff.ceiling(a, base=1.0, cap=10.0) for a in range(1, 7)]
    assert got == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_ceiling_survives_huge_attempt_numbers() -> None:
    assert backoff.ceiling(10_000, base=0.5, cap=600.0) == 600.0


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempt_must_be_positive(attempt: int) -> None:
    with pytest.raises(ValueError, match="attempt must be >= 1"):
        backoff.full_jitter(attempt, base=1.0, cap=10.0)


def test_base_and_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        backoff.ceiling(1, base=0.0, cap=10.0)


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    assert backoff.full_jitter(4, base=1.0, cap=100.0, rand=lambda: 0.0) == 0.0
    assert backoff.full_jitter(4, base=1.0, cap=100.0, rand=lambda: 0.5) == 4.0
    assert backoff.full_jitter(4, base=1.0, cap=100.0, rand=lambda: 0.999) < 8.0


def test_full_jitter_spreads_simultaneous_failures() -> None:
    rng = random.Random(7)
    delays = [backoff.full_jitter(6, base=1.0, cap=600.0, rand=rng.random) for _ in range(1000)]
    assert all(0.0 <= d < 32.0 for d in delays)
    # Spread over the whole range, not clustered: every quarter is hit.
    quarters = {int(d // 8) for d in delays}
    assert quarters == {0, 1, 2, 3}


def test_backoff_helper_grows_is_never_zero_and_resets() -> None:
    b = backoff.Backoff(base=0.2, cap=5.0, rand=lambda: 0.999)
    first = [b.next() for _ in range(10)]
    assert all(d >= 0.1 for d in first)
    assert first[0] < first[3]
    assert max(first) == 5.0
    b.reset()
    assert b.failures == 0
    assert b.next() < 0.4


def test_backoff_helper_lower_bound_with_zero_jitter() -> None:
    b = backoff.Backoff(base=0.2, cap=5.0, rand=lambda: 0.0)
    assert [b.next() for _ in range(3)] == [0.1, 0.1, 0.1]
