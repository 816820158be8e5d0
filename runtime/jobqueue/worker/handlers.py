"""The handler API: `@handler("type")` functions and the `JobContext` they get.

People who build their own worker image write::

    from jobqueue import handler, JobContext

    @handler("resize-image")
    async def resize(ctx: JobContext, data: dict) -> dict | None:
        ctx.log.info("resizing", size=data["size"])
        ...

and start `jobqueue worker --handlers mypackage.jobs`. The worker imports
those modules; importing runs the decorators, which fill a registry. A
coroutine function runs on the worker's event loop; a plain function runs
in a thread, so a blocking call does not stall the heartbeats.

Execution is at least once: a handler sees `ctx.job_id` and `ctx.attempt`
so it can make its side effects idempotent (docs/design.md, invariant 10).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import NoReturn, TypeVar

from structlog.typing import FilteringBoundLogger

from jobqueue.models import JSON, JobId, TenantId, WorkerId
from jobqueue.worker import context
from jobqueue.worker.retry import Retry

F = TypeVar("F", bound=Callable[..., object])


# What `ctx.log` is: a structlog bound logger (info, warning, error, bind...).
Logger = FilteringBoundLogger


@dataclass(frozen=True, slots=True)
class JobContext:
    """Who and what a handler is running for, and its line back to the
    worker: `snooze`, `progress`, `cancelled` (see worker/context.py)."""

    job_id: JobId
    tenant_id: TenantId
    queue: str
    type: str
    attempt: int  # 1 on the first run; counts crashes and lost leases too
    max_attempts: int
    worker_id: WorkerId
    timeout_seconds: int
    # Every line logged through it carries job_id, tenant_id, worker_id,
    # attempt and the trace id.
    log: Logger = field(repr=False)
    controls: context.Controls = field(default_factory=context.Controls, repr=False)

    @property
    def last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts

    def snooze(self, seconds: float) -> NoReturn:
        """Stop here and run the job again `seconds` from now (database
        clock), without burning an attempt. Raises; never returns."""
        raise context.Snooze(context.snooze_seconds(seconds))

    def progress(self, fraction: float, note: str | None = None) -> None:
        """Report how far the job is (0 to 1) with an optional note (up to
        200 characters). Stored on the job and streamed on `WS /ws/jobs`;
        the worker writes only the latest report, at most a few times a
        second, so calling it in a tight loop is cheap."""
        self.controls.report(*context.progress_report(fraction, note))

    @property
    def cancelled(self) -> bool:
        """True once the job was cancelled or its lease lost: whatever the
        handler returns now is dropped. Sync handlers should poll it."""
        return self.controls.cancelled.is_set()


class PermanentFailure(Exception):
    """Raise from a handler when retrying cannot help (bad input): the job goes
    to the DLQ at once with this message instead of being retried."""


HandlerFn = Callable[[JobContext, JSON], Awaitable[JSON]] | Callable[[JobContext, JSON], JSON]


@dataclass(frozen=True, slots=True)
class Registered:
    name: str
    fn: Callable[..., object]
    is_async: bool
    retry: Retry | None = None


class Registry:
    """Job type -> handler. One per worker process (see `default_registry`)."""

    def __init__(self) -> None:
        self._by_name: dict[str, Registered] = {}

    def add(self, name: str, fn: Callable[..., object], *, retry: Retry | None = None) -> None:
        if not isinstance(name, str) or not 1 <= len(name) <= 200:
            raise ValueError(f"a job type must be 1 to 200 characters, got {name!r}")
        if not callable(fn):
            raise TypeError(f"handler for {name!r} is not callable: {fn!r}")
        existing = self._by_name.get(name)
        # Importing a module twice (e.g. under two names) re-runs its
        # decorators; only a *different* function for a taken name is a bug.
        if existing is not None and _qualified(existing.fn) != _qualified(fn):
            raise ValueError(
                f"job type {name!r} already has a handler: {_qualified(existing.fn)}; "
                f"refusing {_qualified(fn)}"
            )
        if retry is not None and not isinstance(retry, Retry):
            raise TypeError(f"retry for {name!r} must be a jobqueue.Retry, got {retry!r}")
        self._by_name[name] = Registered(name, fn, inspect.iscoroutinefunction(fn), retry)

    def get(self, name: str) -> Registered | None:
        return self._by_name.get(name)

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name


def _qualified(fn: Callable[..., object]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


# The decorator runs when a user's module is imported, before any worker
# object exists, so it needs a registry to write to: this one, per process.
_DEFAULT = Registry()


def default_registry() -> Registry:
    return _DEFAULT


def handler(
    name: str, *, retry: Retry | None = None, registry: Registry | None = None
) -> Callable[[F], F]:
    """Register the decorated function as the handler of job type `name`.

    `retry` (a `jobqueue.Retry`) gives this handler's failures their own
    max_attempts and backoff; without it the worker's settings apply."""

    def decorate(fn: F) -> F:
        (registry or _DEFAULT).add(name, fn, retry=retry)
        return fn

    return decorate


class HandlerImportError(ValueError):
    """A module named in --handlers could not be imported."""


def parse_modules(spec: str | Iterable[str]) -> list[str]:
    """'a.b, c' -> ['a.b', 'c']; empty items dropped, order kept, no duplicates."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[str] = []
    for item in (i.strip() for i in items):
        if item and item not in out:
            out.append(item)
    return out


def load(modules: str | Iterable[str], *, registry: Registry | None = None) -> Registry:
    """Add the built-in handlers, import every module named, return the registry.

    `@handler` writes to the process's default registry, so the modules'
    handlers land there; a `registry` of one's own (tests) gets the
    built-ins and whatever is added to it by hand.

    A module that fails to import stops the worker at start-up with the
    module's name and the error, rather than dead-lettering its jobs later.
    """
    from jobqueue.worker import builtin

    reg = registry or _DEFAULT
    for name, fn in builtin.BUILTINS.items():
        reg.add(name, fn)
    for name in parse_modules(modules):
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise HandlerImportError(
                f"cannot import handler module {name!r}: {type(exc).__name__}: {exc}"
            ) from exc
    return reg
