"""A handler's own retry policy, `@handler("x", retry=Retry(...))` (pure).

The delay is only a number: the database adds it to its own clock
(docs/design.md, invariant 4).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from jobqueue.process.backoff import ceiling

Shape = Literal["exponential", "linear", "constant"]
SHAPES: tuple[Shape, ...] = ("exponential", "linear", "constant")


@dataclass(frozen=True, slots=True)
class Retry:
    """A handler's own retry policy: `@handler("x", retry=Retry(...))`.

    Fields left None take the worker's settings (JOBQUEUE_WORKER_BACKOFF_*)
    and the job's max_attempts. `max_attempts`, when set, replaces the job's
    from its first failure on (the failure writes it to the job, so the
    reaper and readers agree). Delays after failure n (n >= 1):
    exponential base * 2**(n-1), linear base * n, constant base; each capped
    at `cap_seconds`, then, with `jitter`, drawn uniformly below that
    ceiling (full jitter).
    """

    max_attempts: int | None = None
    base_seconds: float | None = None
    cap_seconds: float | None = None
    backoff: Shape = "exponential"
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts is not None and (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or not 1 <= self.max_attempts <= 1000
        ):
            raise ValueError(f"max_attempts must be 1 to 1000, got {self.max_attempts!r}")
        for name in ("base_seconds", "cap_seconds"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int | float) and 0 < value < 1e9):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        if self.backoff not in SHAPES:
            raise ValueError(f"backoff must be one of {', '.join(SHAPES)}, got {self.backoff!r}")

    def delay(
        self,
        attempt: int,
        *,
        base: float,
        cap: float,
        rand: Callable[[], float] = random.random,
    ) -> float:
        """Seconds before the next try after `attempt` failures; `base` and
        `cap` are the worker's, used where this policy leaves them None."""
        b = self.base_seconds if self.base_seconds is not None else base
        c = self.cap_seconds if self.cap_seconds is not None else cap
        n = max(attempt, 1)
        if self.backoff == "exponential":
            top = ceiling(n, base=b, cap=c)
        elif self.backoff == "linear":
            top = min(c, b * n)
        else:
            top = min(c, b)
        return top * rand() if self.jitter else top
