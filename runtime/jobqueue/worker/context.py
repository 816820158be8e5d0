"""What a running handler can ask of its worker through `ctx`: snooze,
report progress, see that its job was cancelled. Pure: no I/O here; the
worker wires `Controls` to its progress writer and cancel path.

- `ctx.snooze(seconds)` raises `Snooze`: the job goes back to the queue to
  run again after `seconds`, without burning an attempt. It derives from
  BaseException, like CancelledError, so a handler's `except Exception`
  does not swallow it by accident.
- `ctx.progress(fraction, note)` never blocks and never fails the job on a
  database hiccup: it records the latest report, which the worker writes
  (fenced by the lease token) and the API streams to watchers. Callable
  from async handlers and from sync handlers' threads alike.
- `ctx.cancelled` turns true once the job was cancelled (or its lease lost):
  an async handler is cancelled outright (CancelledError), a sync one,
  which Python cannot interrupt, should poll it and return.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

# A snooze past a year is a bug, not a plan; a year also stays far inside
# what timestamptz arithmetic holds.
MAX_SNOOZE_SECONDS = 366 * 86_400.0
# The jobs.progress_note column's bound.
MAX_NOTE_LENGTH = 200


class Snooze(BaseException):
    """Raised by `ctx.snooze()`; the worker re-queues the job, attempt kept."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"snoozed for {seconds} s")
        self.seconds = seconds


def snooze_seconds(seconds: object) -> float:
    """The delay as a float, or ValueError naming what is wrong with it."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise ValueError(f"snooze seconds must be a number, got {seconds!r}")
    value = float(seconds)
    if not math.isfinite(value) or not 0 <= value <= MAX_SNOOZE_SECONDS:
        raise ValueError(
            f"snooze seconds must be between 0 and {MAX_SNOOZE_SECONDS:.0f}, got {seconds!r}"
        )
    return value


def progress_report(fraction: object, note: object) -> tuple[float, str | None]:
    """A checked (fraction, note): the fraction in [0, 1], the note text cut
    to MAX_NOTE_LENGTH characters. ValueError on anything else."""
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise ValueError(f"progress must be a number between 0 and 1, got {fraction!r}")
    value = float(fraction)
    if not 0.0 <= value <= 1.0:  # NaN fails this too
        raise ValueError(f"progress must be between 0 and 1, got {fraction!r}")
    if note is not None and not isinstance(note, str):
        raise ValueError(f"a progress note must be text, got {type(note).__name__}")
    return value, None if note is None else note[:MAX_NOTE_LENGTH]


ProgressSink = Callable[[float, str | None], None]


def _nowhere(_fraction: float, _note: str | None) -> None:
    """A context built outside a worker (tests, a REPL) reports to nobody."""


@dataclass(slots=True)
class Controls:
    """One attempt's line back to the worker. `report` must be safe to call
    from any thread; `cancelled` is set by the worker, read by the handler."""

    report: ProgressSink = _nowhere
    cancelled: threading.Event = field(default_factory=threading.Event)
