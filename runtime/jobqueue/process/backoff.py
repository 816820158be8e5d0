"""Retry delays: exponential backoff with full jitter (pure, no I/O).

Full jitter (a uniform draw between zero and the exponential ceiling)
spreads retries of jobs that failed together, so a dependency that was down
is not hit by all of them at the same instant when it returns. The delay is
only a number: the database adds it to its own clock (docs/design.md, invariant 4).
"""

from __future__ import annotations

import random
from collections.abc import Callable


def ceiling(attempt: int, *, base: float, cap: float) -> float:
    """The largest delay allowed after `attempt` failures (attempt >= 1)."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if base <= 0 or cap <= 0:
        raise ValueError("base and cap must be positive")
    # Stop doubling once past the cap: 2**attempt overflows a float near 1024.
    exponent = min(attempt - 1, 64)
    return min(cap, base * 2.0**exponent)


def full_jitter(
    attempt: int,
    *,
    base: float,
    cap: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """A delay in [0, ceiling(attempt)); `rand` returns values in [0, 1)."""
    return ceiling(attempt, base=base, cap=cap) * rand()


class Backoff:
    """Stateful helper for loops that retry the same thing (e.g. reconnects).

    `next()` grows the delay per consecutive failure; `reset()` after a
    success. Never sleeps itself: the caller decides how to wait.
    """

    def __init__(
        self,
        *,
        base: float = 0.1,
        cap: float = 5.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.base = base
        self.cap = cap
        self._rand = rand
        self.failures = 0

    def next(self) -> float:
        self.failures += 1
        # Never zero: a loop that retries at once would spin on a dead socket.
        low = self.base / 2
        jitter = full_jitter(self.failures, base=self.base, cap=self.cap, rand=self._rand)
        return min(self.cap, low + jitter)

    def reset(self) -> None:
        self.failures = 0
