"""The ack batcher: turns finished attempts into fenced state changes.

Whatever finished while the previous flush was in flight is flushed
together: all successes in one ack statement, all failures in one fail
statement; snoozes are rare and go one by one. Every finished job logs one
line with its duration: failures always (a warning), successes as an info
line, sampled by `log_sample` (1.0 every one, 0 none) for queues that run
thousands a second. While the database is unreachable, results are kept and
retried with backoff: a result is only dropped when the database says the
lease is no longer ours ("lease lost"), which is exactly when dropping it is
correct.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter, Histogram

from jobqueue import db, errors
from jobqueue.db import leases
from jobqueue.models import JobStatus, Lease, Transition
from jobqueue.observability import logging as obslog
from jobqueue.observability import metrics, tracing
from jobqueue.process.service import Service, event_within, run_forever
from jobqueue.worker.handlers import Logger
from jobqueue.worker.runner import Failed, Outcome, Snoozed, Succeeded


@dataclass(frozen=True, slots=True)
class Completion:
    lease: Lease
    outcome: Outcome
    duration_seconds: float


class Completer(Service[int]):
    """A service (jobqueue.process): a pass flushes what finished since the
    last one, waiting for the first result if there is none; `run_forever`
    retries a flush that met an outage (the results stay pending)."""

    name = "completer"
    component = "worker"
    interval = 0.0
    retry_base_seconds = 0.2
    retry_cap_seconds = 5.0

    def __init__(
        self,
        *,
        pool: db.Pool,
        queue: str,
        worker_id: str,
        log: Logger,
        on_settled: Callable[[list[Lease]], None],
        max_batch: int = 500,
        log_sample: float = 1.0,
    ) -> None:
        # Below info level the lines would be filtered anyway: skip the binding too.
        enabled = getattr(log, "is_enabled_for", None)
        self.log_sample = log_sample if enabled is None or enabled(logging.INFO) else 0.0
        self.pool = pool
        self.queue = queue
        self.worker_id = worker_id
        self.log = log
        self.on_settled = on_settled
        self.max_batch = max_batch
        self._inbox: asyncio.Queue[Completion] = asyncio.Queue()
        self._pending: list[Completion] = []
        self._unsettled = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._leases_lost = metrics.LEASE_LOST.labels(queue)
        # (tenant, status) -> its completed counter and duration histogram:
        # labels() on every ack cost more than the counting itself.
        self._outcomes: dict[tuple[str, str], tuple[Counter, Histogram]] = {}

    def put(self, completion: Completion) -> None:
        self._unsettled += 1
        self._idle.clear()
        self._inbox.put_nowait(completion)

    @property
    def unsettled(self) -> int:
        return self._unsettled

    async def drain(self, timeout: float) -> bool:
        """Wait until every result put so far is settled; False on timeout."""
        return await event_within(self._idle, timeout)

    async def run(self) -> None:
        await run_forever(self, log=self.log)

    async def run_once(self) -> int:
        """Flush the pending results; how many there were."""
        if not self._pending:
            self._pending.append(await self._inbox.get())
        while not self._inbox.empty() and len(self._pending) < self.max_batch:
            self._pending.append(self._inbox.get_nowait())
        batch = len(self._pending)
        await self._flush()
        return batch

    async def wait(self, seconds: float) -> None:
        if seconds > 0:  # after an outage; results wait in the inbox meanwhile
            await asyncio.sleep(seconds)

    def _settle(self, done: list[Completion]) -> None:
        gone = {id(c) for c in done}
        self._pending = [c for c in self._pending if id(c) not in gone]
        self.on_settled([c.lease for c in done])
        self._unsettled -= len(done)
        if self._unsettled == 0:
            self._idle.set()

    async def _flush(self) -> None:
        wins = [c for c in self._pending if isinstance(c.outcome, Succeeded)]
        if wins:
            started = tracing.now_ns()
            try:
                done = await leases.ack(
                    self.pool,
                    done=[(c.lease.job_id, c.lease.token, _result(c)) for c in wins],
                )
            except errors.InvalidInput:
                done = await self._ack_one_by_one(wins)
            acked = {t.job_id: t for t in done}
            for c in wins:
                self._report(c, acked.get(c.lease.job_id), started)
            self._settle(wins)
        losses = [c for c in self._pending if isinstance(c.outcome, Failed)]
        if losses:
            started = tracing.now_ns()
            failed = await leases.fail_many(self.pool, failed=[_failure(c) for c in losses])
            by_id = {t.job_id: t for t in failed}
            for c in losses:
                self._report(c, by_id.get(c.lease.job_id), started)
            self._settle(losses)
        for c in [c for c in self._pending if isinstance(c.outcome, Snoozed)]:
            assert isinstance(c.outcome, Snoozed)
            t = await leases.snooze(
                self.pool, job_id=c.lease.job_id, token=c.lease.token,
                seconds=c.outcome.seconds,
            )
            self._report_snooze(c, t)
            self._settle([c])

    def _report_snooze(self, c: Completion, t: Transition | None) -> None:
        job = c.lease.job
        assert isinstance(c.outcome, Snoozed)
        with obslog.bind_job(job.id, job.tenant_id, self.worker_id, job.attempt,
                             trace_context=job.trace_context):
            if t is None:
                self._leases_lost.inc()
                self.log.warning("lease lost", job_id=str(job.id), tenant_id=job.tenant_id,
                                 attempt=job.attempt, detail="snooze dropped")
                return
            self.log.info("job snoozed", job_id=str(job.id), tenant_id=job.tenant_id,
                          type=job.type, seconds=c.outcome.seconds,
                          duration_seconds=round(c.duration_seconds, 6))

    async def _ack_one_by_one(self, wins: list[Completion]) -> list[Transition]:
        """A result the database refuses must not block the batch: ack the
        others, dead-letter that one. (NUL and lone surrogates no longer
        reach it: the db layer stores them as U+FFFD; this is for whatever
        else a server may refuse.)"""
        out: list[Transition] = []
        for c in wins:
            try:
                out += await leases.ack(
                    self.pool, done=[(c.lease.job_id, c.lease.token, _result(c))]
                )
            except errors.InvalidInput as exc:
                t = await leases.fail(
                    self.pool,
                    job_id=c.lease.job_id,
                    token=c.lease.token,
                    error=f"the database refused the handler's result: {exc}",
                    retry_in_seconds=0,
                    permanent=True,
                )
                if t is not None:
                    out.append(t)
        return out

    def _report(self, c: Completion, t: Transition | None, started_ns: int) -> None:
        job = c.lease.job
        line = t is not None and isinstance(c.outcome, Succeeded) and self._sampled()
        if t is None or isinstance(c.outcome, Failed) or line:
            # The ack is the job's other boundary: its lines carry the job's
            # trace too. Only these branches log, so only they bind.
            with obslog.bind_job(job.id, job.tenant_id, self.worker_id, job.attempt,
                                 trace_context=job.trace_context):
                self._report_bound(c, t, started_ns, line)
        else:
            self._report_bound(c, t, started_ns, False)

    def _report_bound(
        self, c: Completion, t: Transition | None, started_ns: int, line: bool
    ) -> None:
        job = c.lease.job
        traced = tracing.recording(job.trace_context)
        attrs = tracing.job_attributes(
            job_id=job.id, tenant_id=job.tenant_id, worker_id=self.worker_id, attempt=job.attempt
        ) if traced else {}
        if t is None:
            self._leases_lost.inc()
            self.log.warning(
                "lease lost", job_id=str(job.id), tenant_id=job.tenant_id, attempt=job.attempt,
                detail="result dropped: the job was re-queued or finished elsewhere",
            )
            if traced:
                tracing.record("ack_job", parent=job.trace_context, start_time=started_ns,
                               attributes=attrs, error="lease lost")
            return
        status = _status_label(t)
        completed, duration = self._outcome_metrics(job.tenant_id, status)
        completed.inc()
        duration.observe(c.duration_seconds)
        if traced:
            tracing.record("ack_job", parent=job.trace_context, start_time=started_ns,
                           attributes={**attrs, "status": status})
        if isinstance(c.outcome, Failed):
            self.log.warning(
                "job failed", job_id=str(job.id), tenant_id=job.tenant_id, attempt=job.attempt,
                max_attempts=c.outcome.max_attempts or job.max_attempts, status=status,
                type=job.type, duration_seconds=round(c.duration_seconds, 6),
                error=c.outcome.error.splitlines()[0][:500],
                retry_in=round(c.outcome.retry_in_seconds, 3) if status == "retry" else None,
            )
        elif line:
            self.log.info(
                "job succeeded", job_id=str(job.id), tenant_id=job.tenant_id,
                attempt=job.attempt, type=job.type,
                duration_seconds=round(c.duration_seconds, 6),
            )

    def _sampled(self) -> bool:
        """Whether this success logs its line."""
        rate = self.log_sample
        return rate >= 1.0 or (rate > 0.0 and random.random() < rate)

    def _outcome_metrics(self, tenant_id: str, status: str) -> tuple[Counter, Histogram]:
        key = (tenant_id, status)
        found = self._outcomes.get(key)
        if found is None:
            found = (metrics.JOBS_COMPLETED.labels(tenant_id, status),
                     metrics.JOB_DURATION.labels(tenant_id, status))
            self._outcomes[key] = found
        return found


def _result(c: Completion) -> object:
    assert isinstance(c.outcome, Succeeded)
    return c.outcome.result


def _failure(c: Completion) -> leases.Failure:
    assert isinstance(c.outcome, Failed)
    o = c.outcome
    return leases.Failure(c.lease.job_id, c.lease.token, o.error, o.retry_in_seconds,
                          o.permanent, o.max_attempts)


def _status_label(t: Transition) -> str:
    if t.status is JobStatus.QUEUED:
        return "retry"
    return t.status.value
