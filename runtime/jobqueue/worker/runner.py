"""One attempt of one job: find its handler, run it within its timeout, and
say how it ended. No database calls here: the worker acks what this returns.

Outcomes, and what the worker does with them:
- `Succeeded(result)`: ack (-> succeeded).
- `Failed(permanent=True)`: straight to the DLQ (unknown job type, bad
  input, a result that is not JSON).
- `Failed(permanent=False)`: retry after `retry_in_seconds` of full-jitter
  backoff, or the DLQ once attempts are exhausted (the SQL decides).
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
from jobqueue.worker.handlers import JobContext, Logger, PermanentFailure, Registry

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


Outcome = Succeeded | Failed


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float
    cap_seconds: float

    def delay(self, attempt: int) -> float:
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

    def context(self, lease: Lease) -> JobContext:
        job = lease.job
        return JobContext(
            job_id=job.id,
            tenant_id=job.tenant_id,
            queue=job.queue,
            type=job.type,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            worker_id=self.worker_id,
            timeout_seconds=job.timeout_seconds,
            log=self.log,
        )

    async def run(self, lease: Lease) -> Outcome:
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
        ctx = self.context(lease)
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
            return Failed(error, permanent=False, retry_in_seconds=self.retry.delay(job.attempt))
        except PermanentFailure as exc:
            return Failed(describe(exc), permanent=True)
        except asyncio.CancelledError:
            raise
        except (Exception, SystemExit) as exc:
            # sys.exit() in a handler fails the job, not the worker.
            return Failed(
                describe(exc), permanent=False, retry_in_seconds=self.retry.delay(job.attempt)
            )
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
