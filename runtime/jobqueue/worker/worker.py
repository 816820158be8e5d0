"""The worker process: named, supervised tasks around a set of held leases.

- `fetcher` leases as many jobs as there are free slots, when a NOTIFY says
  its queue has work or when the poll interval passes (always on: LISTEN
  can be off, e.g. behind PgBouncer, or miss events while reconnecting).
  With LISTEN on, a freed slot wakes it only while the queue may hold more
  (the last lease filled every free slot, or found none free), as River's
  producer does: otherwise every finished job at light load would cost an
  empty lease, the priciest statement of all, while NOTIFY already says
  when new work arrives. A tenant held back by its max_concurrent is
  therefore served again at the next NOTIFY or poll. Without LISTEN
  (--poll-only) every freed slot still wakes it: there, that is the only
  prompt chance to see new work;
- `heartbeat` extends every held lease at most every third of the lease
  duration (heartbeat.py); a lease the database no longer gives back is
  lost: its handler is cancelled and its result will not be written;
- `completer` batches acks (see completer.py);
- `listener` keeps a LISTEN connection open, reconnecting with backoff; a
  NOTIFY that a held job was cancelled stops its handler at once;
- `progress` writes handlers' `ctx.progress()` reports (progress.py).

The first side task that fails stops the process cleanly. Every database
call rides out an outage: it logs, backs off (capped) and tries again.

SIGTERM (docs/design.md, invariant 8): stop leasing (a lease already in flight is
let finish, so no job is left leased to a process that is gone), give
running jobs the grace period, then cancel the rest and release them
without burning an attempt.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from jobqueue import db, errors
from jobqueue.db import leases
from jobqueue.models import JobId, Lease, LeaseToken, WorkerId
from jobqueue.observability import logging as obslog
from jobqueue.observability import metrics, tracing
from jobqueue.process.backoff import Backoff
from jobqueue.settings import DatabaseSettings, WorkerSettings
from jobqueue.worker import release, spans
from jobqueue.worker.completer import Completer, Completion
from jobqueue.worker.context import Controls
from jobqueue.worker.handlers import Registry
from jobqueue.worker.heartbeat import Heartbeat
from jobqueue.worker.progress import ProgressWriter
from jobqueue.worker.runner import RetryPolicy, Runner
from jobqueue.worker.wakeup import Wakeup

# SIGTERM: how long to keep trying to ack results and release leases.
FLUSH_SECONDS = 10.0


def new_worker_id() -> WorkerId:
    """Unique per process: host (the pod name on Kubernetes), pid, randomness."""
    return WorkerId(f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}")


@dataclass(eq=False)
class Held:
    lease: Lease
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None
    finished: bool = False  # the handler returned; its result awaits the completer
    controls: Controls = field(default_factory=Controls)


class Worker:
    def __init__(
        self,
        *,
        dsn: str,
        settings: WorkerSettings,
        registry: Registry,
        database: DatabaseSettings | None = None,
        worker_id: WorkerId | None = None,
    ) -> None:
        self.dsn = dsn
        self.settings = settings
        self.database = database or DatabaseSettings()
        self.registry = registry
        self.worker_id = worker_id or new_worker_id()
        self.queue = settings.queue
        self.log = obslog.get_logger("jobqueue.worker").bind(
            worker_id=self.worker_id, queue=self.queue
        )
        self.heartbeat_seconds = min(settings.heartbeat_seconds, settings.lease_seconds / 3)
        self.held: dict[JobId, Held] = {}
        self.running: set[JobId] = set()
        # Whether a freed slot should wake the fetcher (see the module docstring).
        self._hungry = True
        # Set while the fetcher is between leases, when cancelling it loses
        # nothing. Inside a lease call the rows
        # are already ours in the database: cancelling there would strand
        # them, leased to a process that is gone, until they expire and burn
        # an attempt (docs/design.md, invariant 8).
        self._between_leases = asyncio.Event()
        self._between_leases.set()
        self._wake = Wakeup(dsn=dsn, queue=self.queue, log=self.log,
                            on_cancelled=self._cancelled, watching=lambda: bool(self.held))
        self._stop = asyncio.Event()
        self._force = asyncio.Event()
        self._threads = ThreadPoolExecutor(
            max_workers=settings.concurrency, thread_name_prefix="handler"
        )
        self._runner = Runner(
            registry=registry,
            worker_id=self.worker_id,
            retry=RetryPolicy(settings.backoff_base_seconds, settings.backoff_cap_seconds),
            threads=self._threads,
            log=obslog.get_logger("jobqueue.handler"),
        )
        self._pool: db.Pool | None = None
        self._completer: Completer | None = None
        self._progress = ProgressWriter(every=settings.progress_seconds, log=self.log,
                                        db_errors=metrics.DB_ERRORS.labels("worker"))
        # Labelled children looked up once: labels() costs more than inc().
        self._busy_slots = metrics.WORKER_BUSY_SLOTS.labels(self.queue)
        self._leases_acquired = metrics.LEASE_ACQUIRED.labels(self.worker_id)
        self._leases_lost = metrics.LEASE_LOST.labels(self.queue)
        self._db_errors = metrics.DB_ERRORS.labels("worker")

    # -- control ------------------------------------------------------------------

    def request_stop(self) -> None:
        """First call: graceful stop. A second call: stop now (release everything)."""
        if self._stop.is_set():
            self._force.set()
        self._stop.set()
        self._wake.set()

    @property
    def free_slots(self) -> int:
        return self.settings.concurrency - len(self.running)

    async def run(self) -> int:
        """Run until stopped; 0 after a clean stop, 1 if a side task failed."""
        self.log.info(
            "worker starting", concurrency=self.settings.concurrency,
            handlers=self.registry.names(), lease_seconds=self.settings.lease_seconds,
            listen=self.database.listen,
        )
        metrics.WORKER_SLOTS.labels(self.queue).set(self.settings.concurrency)
        pool = await self._connect()
        if pool is None:
            return 0
        self._pool = pool
        self._completer = Completer(
            pool=pool, queue=self.queue, worker_id=self.worker_id, log=self.log,
            on_settled=self._settled, log_sample=self.settings.log_finished_sample,
        )
        side = {
            "fetcher": self._fetcher(pool),
            "heartbeat": Heartbeat(
                pool=pool, every=self.heartbeat_seconds,
                lease_seconds=self.settings.lease_seconds, held=self._held_leases,
                on_lost=self._not_extended, log=self.log, db_errors=self._db_errors,
            ).run(),
            "completer": self._completer.run(),
            "progress": self._progress.run(pool),
        }
        if self.database.listen:
            side["listener"] = self._wake.listen()
        tasks = {name: asyncio.create_task(coro, name=name) for name, coro in side.items()}
        stop = asyncio.create_task(self._stop.wait(), name="stop")
        await asyncio.wait([*tasks.values(), stop], return_when=asyncio.FIRST_COMPLETED)
        code = 0
        for name, task in tasks.items():
            if task.done():
                code = 1
                exc = None if task.cancelled() else task.exception()
                self.log.error("side task ended; stopping", task=name, error=repr(exc),
                               exc_info=exc)
        stop.cancel()
        try:
            await self._shutdown(tasks, pool)
        finally:
            self._threads.shutdown(wait=False, cancel_futures=True)
        self.log.info("worker stopped", exit_code=code)
        return code

    async def _connect(self) -> db.Pool | None:
        backoff = Backoff(base=0.2, cap=5.0)
        while not self._stop.is_set():
            try:
                return await db.open_pool(
                    self.database, dsn=self.dsn, min_size=1,
                    application_name=f"jobqueue-worker {self.worker_id}",
                )
            except errors.DatabaseUnavailable as exc:
                self._db_errors.inc()
                delay = backoff.next()
                self.log.warning("database unavailable, retrying", error=str(exc),
                                 retry_in=round(delay, 2))
                await self._sleep_unless_stopped(delay)
        return None

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._stop.wait()
        except TimeoutError:
            pass

    # -- leasing --------------------------------------------------------------------

    async def _fetcher(self, pool: db.Pool) -> None:
        backoff = Backoff(base=0.2, cap=5.0)
        while not self._stop.is_set():
            free = self.free_slots
            self._wake.clear()
            if free <= 0:
                self._hungry = True
                await self._wake.wait()  # a freed slot or a stop wakes us
                continue
            started = tracing.now_ns()
            retry_in: float | None = None
            self._between_leases.clear()
            try:
                got = await leases.lease(
                    pool, queue=self.queue, worker_id=self.worker_id, limit=free,
                    lease_seconds=self.settings.lease_seconds,
                )
                backoff.reset()
                self._hungry = len(got) >= free
                if got:
                    self._begin(got, started)
            except errors.DatabaseUnavailable as exc:
                self._db_errors.inc()
                retry_in = backoff.next()
                self.log.warning("cannot lease, will retry", error=str(exc),
                                 retry_in=round(retry_in, 2))
            finally:
                self._between_leases.set()
            if retry_in is not None:
                await asyncio.sleep(retry_in)
            elif not self._hungry:
                # The queue looks drained: wait for a NOTIFY, a stop or the poll.
                await self._wake.wait(self.settings.poll_seconds)
        # Stopping: no more leases. Stay until the shutdown cancels this task;
        # returning would look like a failed side task to run().
        await asyncio.get_running_loop().create_future()

    def _begin(self, got: list[Lease], started_ns: int) -> None:
        # The lease made them running already (one statement, docs/design.md,
        # "Job state machine"): the handlers start without another round trip.
        self._leases_acquired.inc(len(got))
        if tracing.enabled():
            got = spans.acquired(got, worker_id=self.worker_id, started_ns=started_ns)
        for lease in got:
            h = Held(lease, controls=Controls(report=self._progress.sink(lease)))
            self.held[lease.job_id] = h
            self.running.add(lease.job_id)
            h.task = asyncio.create_task(self._execute(h), name=f"job:{lease.job_id}")
        self._gauge()

    async def _execute(self, h: Held) -> None:
        lease = h.lease
        job = lease.job
        with (
            obslog.bind_job(job.id, job.tenant_id, self.worker_id, job.attempt,
                            trace_context=job.trace_context),
            tracing.span("execute_job", parent=job.trace_context,
                         attributes=spans.attributes(lease, self.worker_id)
                         if tracing.recording(job.trace_context) else None),
        ):
            outcome = await self._runner.run(lease, h.controls)
            await self._progress.settle(job.id)
        h.finished = True
        self._release_slot(job.id)
        assert self._completer is not None
        self._completer.put(Completion(lease, outcome, time.monotonic() - h.started))

    def _release_slot(self, job_id: JobId) -> None:
        self.running.discard(job_id)
        if self._hungry or not self.database.listen:
            self._wake.set()

    def _settled(self, settled: list[Lease]) -> None:
        for lease in settled:
            h = self.held.get(lease.job_id)
            if h is not None and h.lease.token == lease.token:
                del self.held[lease.job_id]
        self._gauge()

    def _gauge(self) -> None:
        self._busy_slots.set(len(self.held))

    def _lose(self, h: Held, detail: str) -> None:
        job = h.lease.job
        self._leases_lost.inc()
        self.log.warning("lease lost", job_id=str(job.id), tenant_id=job.tenant_id,
                         attempt=job.attempt, detail=detail)
        self._stop_handler(h)

    def _cancelled(self, jid: JobId) -> None:
        """A NOTIFY says the job was cancelled: its lease is gone with it."""
        h = self.held.get(jid)
        if h is not None and not h.finished:
            self.log.info("job cancelled; stopping its handler", job_id=str(jid),
                          tenant_id=h.lease.job.tenant_id, attempt=h.lease.job.attempt)
            self._stop_handler(h)

    def _stop_handler(self, h: Held) -> None:
        job = h.lease.job
        # A sync handler cannot be interrupted: it sees ctx.cancelled instead.
        h.controls.cancelled.set()
        self.held.pop(job.id, None)
        self._release_slot(job.id)
        if h.task is not None:
            h.task.cancel()
        self._gauge()

    # -- heartbeats -----------------------------------------------------------------

    def _held_leases(self) -> list[tuple[JobId, LeaseToken]]:
        return [(jid, h.lease.token) for jid, h in self.held.items()]

    def _not_extended(self, jid: JobId, token: LeaseToken) -> None:
        h = self.held.get(jid)
        # Finished ones are the completer's to judge: an ack may have landed
        # between the heartbeat statement and its answer.
        if h is None or h.lease.token != token or h.finished:
            return
        self._lose(h, "heartbeat: the job was re-queued, cancelled or finished elsewhere")

    # -- graceful stop --------------------------------------------------------------

    async def _shutdown(self, tasks: dict[str, asyncio.Task[None]], pool: db.Pool) -> None:
        self._stop.set()  # no more leases, whatever ended the run
        self._wake.set()
        fetcher = tasks["fetcher"]
        if not self._between_leases.is_set():
            # A lease in flight: let it finish (milliseconds), so
            # its jobs are held and then finish or are released like the rest.
            # Bounded, in case the database hangs; a second signal cuts it short.
            between = asyncio.create_task(self._between_leases.wait())
            force = asyncio.create_task(self._force.wait())
            await asyncio.wait([between, force], timeout=FLUSH_SECONDS,
                               return_when=asyncio.FIRST_COMPLETED)
            between.cancel()
            force.cancel()
        fetcher.cancel()
        await asyncio.gather(fetcher, return_exceptions=True)
        jobs = [h.task for h in self.held.values() if h.task is not None and not h.finished]
        if jobs and not self._force.is_set():
            self.log.info("stopping: waiting for running jobs", jobs=len(jobs),
                          grace_seconds=self.settings.grace_seconds)
            force = asyncio.create_task(self._force.wait())
            finished = asyncio.gather(*jobs, return_exceptions=True)
            waiters: list[asyncio.Future[Any]] = [finished, force]
            await asyncio.wait(waiters, timeout=self.settings.grace_seconds,
                               return_when=asyncio.FIRST_COMPLETED)
            force.cancel()
        leftover = [h for h in self.held.values() if not h.finished]
        for h in leftover:
            if h.task is not None:
                h.task.cancel()
        await asyncio.gather(*(h.task for h in leftover if h.task), return_exceptions=True)
        if leftover:
            await release.release(pool, held=[(h.lease.job_id, h.lease.token) for h in leftover],
                                  deadline_seconds=FLUSH_SECONDS, log=self.log)
            for h in leftover:
                self.held.pop(h.lease.job_id, None)
                self.running.discard(h.lease.job_id)
        completer = tasks["completer"]
        if (
            self._completer is not None
            and not completer.done()
            and not await self._completer.drain(FLUSH_SECONDS)
        ):
                self.log.error("stopping with results not acked; their leases will expire",
                               results=self._completer.unsettled)
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        await pool.close()
