"""One attempt of one job: find its handler, run it within its timeout, and
say how it ended. No database calls here: the worker acks what this returns.

Outcomes, and what the worker does with them:
- `Succeeded(result)`: ack (-> succeeded).
- `Failed(permanent=True)`: straight to the DLQ (unknown job type, bad
  input, a result that is not JSON).
- `Failed(permanent=False)`: retry after `retry_in_seconds` of backoff (the
  handler's `retry` policy, else the worker's full jitter), or the DLQ once
  attempts are exhausted (the SQL decides; `max_attempts` carries the
  handler's own limit, if it has one).
- `Snoozed(seconds)`: the handler called `ctx.snooze()`: back to the queue,
  the attempt not burned.
A lost lease or a shutdown cancels the task instead: no outcome at all.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import traceback
from concurrent.futures import Executor
from dataclasses import dataclass

from jobqueue.models import JSON, Lease, WorkerId
from jobqueue.process import backoff
from jobqueue.worker.context import Controls, Snooze
from jobqueue.worker.handlers import JobContext, Logger, PermanentFailure, Registered, Registry
from jobqueue.worker.retry import Retry

# Enough of a traceback to find the failing line; the db keeps 4000 chars.
_TRACEBACK_LINES = 12


@dataclass(frozen=True, slots=True)
class Succeeded:
    result: JSON


@dataclass(frozen=True, slots=True)
class Failed:
    error: str
    permanent: bool
    retry_in_seconds: float = 0.0
    max_attempts: int | None = None  # the handler's own limit, if any


@dataclass(frozen=True, slots=True)
class Snoozed:
    seconds: float


Outcome = Succeeded | Failed | Snoozed


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float
    cap_seconds: float

    def delay(self, attempt: int, policy: Retry | None = None) -> float:
        if policy is not None:
            return policy.delay(attempt, base=self.base_seconds, cap=self.cap_seconds)
        return backoff.full_jitter(max(attempt, 1), base=self.base_seconds, cap=self.cap_seconds)


def describe(exc: BaseException) -> str:
    """`Type: message` plus the innermost frames, for last_error."""
    head = f"{type(exc).__name__}: {exc}".rstrip(": ")
    frames = traceback.format_exception(exc)
    tail = "".join(frames[-_TRACEBACK_LINES:-1]).rstrip()
    return f"{head}\n{tail}" if tail else head


class Runner:
    """Runs handlers. Sync handlers go to `threads`, which the worker sizes to
    its concurrency.

    Caveat: a sync handler that overruns its timeout is reported as timed
    out and its slot is freed, but Python cannot stop its thread; it runs
    on in the background and its return value is ignored.
    """

    def __init__(
        self,
        *,
        registry: Registry,
        worker_id: WorkerId,
        retry: RetryPolicy,
        threads: Executor,
        log: Logger,
    ) -> None:
        self.registry = registry
        self.worker_id = worker_id
        self.retry = retry
        self.threads = threads
        self.log = log

    def context(
        self, lease: Lease, controls: Controls | None = None,
        registered: Registered | None = None,
    ) -> JobContext:
        job = lease.job
        policy = registered.retry if registered is not None else None
        limit = policy.max_attempts if policy is not None else None
        return JobContext(
            job_id=job.id,
            tenant_id=job.tenant_id,
            queue=job.queue,
            type=job.type,
            attempt=job.attempt,
            max_attempts=limit if limit is not None else job.max_attempts,
            worker_id=self.worker_id,
            timeout_seconds=job.timeout_seconds,
            log=self.log,
            controls=controls or Controls(),
        )

    def _failed(self, error: str, job_attempt: int, registered: Registered) -> Failed:
        policy = registered.retry
        return Failed(
            error, permanent=False, retry_in_seconds=self.retry.delay(job_attempt, policy),
            max_attempts=policy.max_attempts if policy is not None else None,
        )

    async def run(self, lease: Lease, controls: Controls | None = None) -> Outcome:
        """Run one attempt. Raises CancelledError only when cancelled from outside."""
        job = lease.job
        registered = self.registry.get(job.type)
        if registered is None:
            known = ", ".join(self.registry.names()) or "none"
            return Failed(
                f"no handler for job type {job.type!r} on this worker (queue {job.queue!r}; "
                f"known types: {known})",
                permanent=True,
            )
        ctx = self.context(lease, controls, registered)
        deadline = asyncio.timeout(job.timeout_seconds)
        try:
            async with deadline:
                if registered.is_async:
                    result = await registered.fn(ctx, job.data)  # type: ignore[misc]
                else:
                    loop = asyncio.get_running_loop()
                    # Carry the bound log context (job ids) into the thread.
                    call = functools.partial(
                        contextvars.copy_context().run, registered.fn, ctx, job.data
                    )
                    result = await loop.run_in_executor(self.threads, call)
        except TimeoutError as exc:
            # A handler's own TimeoutError (an HTTP call, say) is an ordinary error.
            error = (
                f"timeout: the handler ran longer than {job.timeout_seconds} s"
                if deadline.expired()
                else describe(exc)
            )
            return self._failed(error, job.attempt, registered)
        except Snooze as snooze:
            return Snoozed(snooze.seconds)
        except PermanentFailure as exc:
            return Failed(describe(exc), permanent=True)
        except asyncio.CancelledError:
            raise
        except (Exception, SystemExit) as exc:
            # sys.exit() in a handler fails the job, not the worker.
            return self._failed(describe(exc), job.attempt, registered)
        try:
            # The database refuses NaN and Infinity in jsonb; catch them here,
            # where the error names this job, not in a batch ack. So too a
            # value nested past what json can encode (RecursionError), which
            # would otherwise escape the ack and stop the worker.
            json.dumps(result, allow_nan=False)
        except (TypeError, ValueError, RecursionError) as exc:
            return Failed(
                f"the handler's result is not JSON: {type(exc).__name__}: {exc}", permanent=True
            )
        return Succeeded(result)
