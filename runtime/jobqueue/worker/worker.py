"""The worker process: named, supervised tasks around the jobs it holds.

- `fetcher` leases as many jobs as there are free slots (fetcher.py);
- `heartbeat` extends every held lease at most every third of the lease
  duration (heartbeat.py); a lease the database no longer gives back is
  lost: its handler is cancelled and its result will not be written;
- `completer` batches acks (see completer.py);
- `listener` keeps a LISTEN connection open, reconnecting with backoff; a
  NOTIFY that a held job was cancelled stops its handler at once;
- `progress` writes handlers' `ctx.progress()` reports (progress.py).

Each is a service of jobqueue.process under `supervise`: the first side
task that ends stops the process cleanly (exit 1). Every database call
rides out an outage: it is counted, backs off (capped) and tries again.
What the worker holds lives in one place, `holding.Holding`.

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
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor

from jobqueue import db
from jobqueue.models import JobId, Lease, LeaseToken, WorkerId
from jobqueue.observability import logging as obslog
from jobqueue.observability import metrics, tracing
from jobqueue.process.connect import until_connected
from jobqueue.process.service import run_forever
from jobqueue.process.supervise import Coros, Tasks, supervise
from jobqueue.settings import DatabaseSettings, WorkerSettings
from jobqueue.worker import release, spans
from jobqueue.worker.completer import Completer, Completion
from jobqueue.worker.context import Controls
from jobqueue.worker.fetcher import Fetcher
from jobqueue.worker.handlers import Registry
from jobqueue.worker.heartbeat import Heartbeat
from jobqueue.worker.holding import HeldJob, Holding
from jobqueue.worker.progress import ProgressWriter
from jobqueue.worker.runner import RetryPolicy, Runner
from jobqueue.worker.wakeup import Wakeup

# SIGTERM: how long to keep trying to ack results and release leases.
FLUSH_SECONDS = 10.0


def new_worker_id() -> WorkerId:
    """Unique per process: host (the pod name on Kubernetes), pid, randomness."""
    return WorkerId(f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}")


class Worker:
    def __init__(
        self,
        *,
        dsn: str,
        settings: WorkerSettings,
        registry: Registry,
        database: DatabaseSettings,
        worker_id: WorkerId | None = None,
    ) -> None:
        self.dsn = dsn
        self.settings = settings
        self.database = database
        self.registry = registry
        self.worker_id = worker_id or new_worker_id()
        self.queue = settings.queue
        self.log = obslog.get_logger("jobqueue.worker").bind(
            worker_id=self.worker_id, queue=self.queue
        )
        self.heartbeat_seconds = min(settings.heartbeat_seconds, settings.lease_seconds / 3)
        self.held = Holding(settings.concurrency)
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
        self._fetcher: Fetcher | None = None
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
        return self.held.free_slots

    async def run(self) -> int:
        """Run until stopped; 0 after a clean stop, 1 if a side task failed."""
        self.log.info(
            "worker starting", concurrency=self.settings.concurrency,
            handlers=self.registry.names(), lease_seconds=self.settings.lease_seconds,
            listen=self.database.listen,
        )
        metrics.WORKER_SLOTS.labels(self.queue).set(self.settings.concurrency)
        pool = await until_connected(
            lambda: db.open_pool(self.database, dsn=self.dsn, min_size=1,
                                 application_name=f"jobqueue-worker {self.worker_id}"),
            stop=self._stop, component="worker", log=self.log,
        )
        if pool is None:
            return 0

        async def shutdown(tasks: Tasks) -> None:
            await self._shutdown(tasks, pool)

        try:
            code = await supervise(self._side_tasks(pool), stop=self._stop, log=self.log,
                                   shutdown=shutdown)
        finally:
            self._threads.shutdown(wait=False, cancel_futures=True)
        self.log.info("worker stopped", exit_code=code)
        return code

    def _side_tasks(self, pool: db.Pool) -> Coros:
        self._fetcher = Fetcher(
            pool=pool, queue=self.queue, worker_id=self.worker_id,
            lease_seconds=self.settings.lease_seconds, poll_seconds=self.settings.poll_seconds,
            held=self.held, wake=self._wake, begin=self._begin,
        )
        self._completer = Completer(
            pool=pool, queue=self.queue, worker_id=self.worker_id, log=self.log,
            on_settled=self._settled, log_sample=self.settings.log_finished_sample,
        )
        heartbeat = Heartbeat(
            pool=pool, every=self.heartbeat_seconds, lease_seconds=self.settings.lease_seconds,
            held=self.held.leases, on_lost=self._not_extended, log=self.log,
            db_errors=self._db_errors,
        )
        side: Coros = {
            "fetcher": self._fetch(self._fetcher),
            "heartbeat": run_forever(heartbeat, log=self.log),
            "completer": run_forever(self._completer, log=self.log),
            "progress": self._progress.run(pool),
        }
        if self.database.listen:
            side["listener"] = run_forever(self._wake.listener(), log=self.log)
        return side

    async def _fetch(self, fetcher: Fetcher) -> None:
        await run_forever(fetcher, log=self.log, until=self._stop.is_set)
        # Stopping: no more leases. Stay until the shutdown cancels this task;
        # returning would look like a failed side task to supervise().
        await asyncio.get_running_loop().create_future()

    # -- held jobs ------------------------------------------------------------------

    def _begin(self, got: list[Lease], started_ns: int) -> None:
        # The lease made them running already (one statement, docs/design.md,
        # "Job state machine"): the handlers start without another round trip.
        self._leases_acquired.inc(len(got))
        if tracing.enabled():
            got = spans.acquired(got, worker_id=self.worker_id, started_ns=started_ns)
        for lease in got:
            h = self.held.add(lease, Controls(report=self._progress.sink(lease)))
            h.task = asyncio.create_task(self._execute(h), name=f"job:{lease.job_id}")
        self._gauge()

    async def _execute(self, h: HeldJob) -> None:
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
        self.held.finish(h)
        self._slot_freed()
        assert self._completer is not None
        self._completer.put(Completion(lease, outcome, time.monotonic() - h.started))

    def _slot_freed(self) -> None:
        # See fetcher.py for when a freed slot is worth a lease.
        if self._fetcher is None or self._fetcher.hungry or not self.database.listen:
            self._wake.set()

    def _settled(self, settled: list[Lease]) -> None:
        for lease in settled:
            h = self.held.get(lease.job_id, lease.token)
            if h is not None:
                self.held.forget(h)
        self._gauge()

    def _gauge(self) -> None:
        self._busy_slots.set(len(self.held))

    def _lose(self, h: HeldJob, detail: str) -> None:
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

    def _stop_handler(self, h: HeldJob) -> None:
        # A sync handler cannot be interrupted: it sees ctx.cancelled instead.
        h.controls.cancelled.set()
        self.held.forget(h)
        self._slot_freed()
        if h.task is not None:
            h.task.cancel()
        self._gauge()

    def _not_extended(self, jid: JobId, token: LeaseToken) -> None:
        h = self.held.get(jid, token)
        # Finished ones are the completer's to judge: an ack may have landed
        # between the heartbeat statement and its answer.
        if h is None or h.finished:
            return
        self._lose(h, "heartbeat: the job was re-queued, cancelled or finished elsewhere")

    # -- graceful stop --------------------------------------------------------------

    async def _shutdown(self, tasks: Tasks, pool: db.Pool) -> None:
        self._stop.set()  # no more leases, whatever ended the run
        self._wake.set()
        await self._land_lease_in_flight()
        fetcher = tasks["fetcher"]
        fetcher.cancel()
        await asyncio.gather(fetcher, return_exceptions=True)
        await self._grace()
        await self._release_unfinished(pool)
        await self._drain_results(tasks["completer"])
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        await pool.close()

    async def _unless_forced(self, waiting: Awaitable[object], timeout: float) -> None:
        """Wait for `waiting` up to `timeout`; a second stop request cuts it short."""
        force = asyncio.ensure_future(self._force.wait())
        await asyncio.wait([asyncio.ensure_future(waiting), force], timeout=timeout,
                           return_when=asyncio.FIRST_COMPLETED)
        force.cancel()

    async def _land_lease_in_flight(self) -> None:
        # A lease in flight: let it finish (milliseconds), so its jobs are held
        # and then finish or are released like the rest. Bounded, in case the
        # database hangs.
        if self._fetcher is None or self._fetcher.between_leases.is_set():
            return
        between = asyncio.ensure_future(self._fetcher.between_leases.wait())
        await self._unless_forced(between, FLUSH_SECONDS)
        between.cancel()

    async def _grace(self) -> None:
        jobs = [h.task for h in self.held.unfinished() if h.task is not None]
        if not jobs or self._force.is_set():
            return
        self.log.info("stopping: waiting for running jobs", jobs=len(jobs),
                      grace_seconds=self.settings.grace_seconds)
        await self._unless_forced(asyncio.gather(*jobs, return_exceptions=True),
                                  self.settings.grace_seconds)

    async def _release_unfinished(self, pool: db.Pool) -> None:
        leftover = self.held.unfinished()
        tasks = [h.task for h in leftover if h.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not leftover:
            return
        await release.release(pool, held=[(h.lease.job_id, h.lease.token) for h in leftover],
                              deadline_seconds=FLUSH_SECONDS, log=self.log)
        for h in leftover:
            self.held.forget(h)

    async def _drain_results(self, completer: asyncio.Task[object]) -> None:
        if self._completer is None or completer.done():
            return
        if not await self._completer.drain(FLUSH_SECONDS):
            self.log.error("stopping with results not acked; their leases will expire",
                           results=self._completer.unsettled)
