"""The worker's progress writer: `ctx.progress()` reports, coalesced.

A handler may report progress as often as it likes, from the event loop or
from a sync handler's thread; only the latest report of each job is kept,
and one statement writes every job's latest at most every `every` seconds
(fenced by the lease token, so a lost lease writes nothing). The statement
also notifies watchers (`WS /ws/jobs` progress events). A failed write is
retried with the next one; progress is advisory, so it never fails a job.
Before a job's result is acked the worker `settle`s its pending report, so
the last progress a handler reported is stored.
"""

from __future__ import annotations

import asyncio
import functools

from prometheus_client import Counter

from jobqueue import db, errors
from jobqueue.db import leases
from jobqueue.models import JobId, Lease, LeaseToken
from jobqueue.process.service import Service, run_forever
from jobqueue.worker.context import ProgressSink
from jobqueue.worker.handlers import Logger

Report = tuple[LeaseToken, float, str | None]


class ProgressWriter(Service[int]):
    """Built with the worker; `run(pool)` is its side task, a service
    (jobqueue.process) whose pass writes what was reported since the last."""

    name = "progress"
    component = "worker"
    retry_on = ()  # a failed write keeps its reports for the next pass

    def __init__(self, *, every: float, log: Logger, db_errors: Counter) -> None:
        self.interval = every
        self._log = log
        self._db_errors = db_errors
        self._pending: dict[JobId, Report] = {}
        self._wake = asyncio.Event()
        self._pool: db.Pool | None = None

    def sink(self, lease: Lease) -> ProgressSink:
        """The `report` of one attempt's Controls; safe from any thread.
        Made on the worker's event loop, whose thread does the writing."""
        job_id, token = lease.job_id, lease.token
        loop = asyncio.get_running_loop()

        def report(fraction: float, note: str | None) -> None:
            put = functools.partial(self._put, job_id, (token, fraction, note))
            try:
                here = asyncio.get_running_loop() is loop
            except RuntimeError:
                here = False
            if here:
                put()
            else:
                loop.call_soon_threadsafe(put)

        return report

    def _put(self, job_id: JobId, report: Report) -> None:
        self._pending[job_id] = report
        self._wake.set()

    async def settle(self, job_id: JobId) -> None:
        """Write the job's pending report now, if it has one (before its ack)."""
        report = self._pending.pop(job_id, None)
        if report is not None and self._pool is not None:
            await self._write(self._pool, {job_id: report})

    async def _write(self, pool: db.Pool, batch: dict[JobId, Report]) -> None:
        try:
            await leases.progress(pool, reports=[(jid, *r) for jid, r in batch.items()])
        except errors.DatabaseUnavailable as exc:
            self._db_errors.inc()
            self._log.warning("cannot store progress, will retry", error=str(exc),
                              jobs=len(batch))
            for jid, r in batch.items():
                self._pending.setdefault(jid, r)
        except errors.InvalidInput as exc:
            # Checked before it gets here; dropping a report beats a stopped worker.
            self._log.warning("progress refused by the database", error=str(exc))

    async def run_once(self) -> int:
        """Wait for a report (unless some wait already), write them all; how many."""
        if not self._pending:
            await self._wake.wait()
        self._wake.clear()
        batch, self._pending = self._pending, {}
        if batch and self._pool is not None:
            await self._write(self._pool, batch)
        return len(batch)

    async def run(self, pool: db.Pool) -> None:
        self._pool = pool
        await run_forever(self, log=self._log)
