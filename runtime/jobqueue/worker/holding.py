"""What a worker holds: one `HeldJob` per leased job, from its lease until
its result is settled, it is released at a stop, or its lease is lost.

A held job is RUNNING while its handler runs (it takes one of the worker's
slots), then FINISHED while its result waits for the completer (the slot is
free again, but the lease is still ours and still heartbeaten), then GONE.
Every part of the worker reads held jobs from here: the fetcher counts free
slots, the heartbeat lists leases, the stop cancels and releases the
unfinished ones.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from jobqueue.models import JobId, Lease, LeaseToken
from jobqueue.worker.context import Controls


class Stage(enum.Enum):
    RUNNING = "running"
    FINISHED = "finished"
    GONE = "gone"


@dataclass(eq=False)
class HeldJob:
    lease: Lease
    started: float = field(default_factory=time.monotonic)
    task: asyncio.Task[None] | None = None
    stage: Stage = Stage.RUNNING
    controls: Controls = field(default_factory=Controls)  # what its handler's ctx asks

    @property
    def finished(self) -> bool:
        """The handler returned; its result awaits (or had) the completer."""
        return self.stage is not Stage.RUNNING


class Holding:
    """The held jobs by id, and how many of them still run (the slots taken)."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.running = 0
        self._jobs: dict[JobId, HeldJob] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._jobs

    def __iter__(self) -> Iterator[HeldJob]:
        return iter(list(self._jobs.values()))

    @property
    def free_slots(self) -> int:
        return self.concurrency - self.running

    def add(self, lease: Lease, controls: Controls) -> HeldJob:
        job = HeldJob(lease, controls=controls)
        self._jobs[lease.job_id] = job
        self.running += 1
        return job

    def get(self, job_id: JobId, token: LeaseToken | None = None) -> HeldJob | None:
        """The held job (of that lease, if `token` is given: a job held again
        under a new lease is another held job)."""
        job = self._jobs.get(job_id)
        if job is None or (token is not None and job.lease.token != token):
            return None
        return job

    def finish(self, job: HeldJob) -> None:
        """Its handler returned: the slot is free, the lease still held."""
        if job.stage is Stage.RUNNING:
            job.stage = Stage.FINISHED
            self.running -= 1

    def forget(self, job: HeldJob) -> None:
        """Settled, released or lost: no longer ours in any way."""
        if job.stage is Stage.RUNNING:
            self.running -= 1
        job.stage = Stage.GONE
        if self._jobs.get(job.lease.job_id) is job:
            del self._jobs[job.lease.job_id]

    def leases(self) -> list[tuple[JobId, LeaseToken]]:
        return [(jid, job.lease.token) for jid, job in self._jobs.items()]

    def unfinished(self) -> list[HeldJob]:
        return [job for job in self._jobs.values() if job.stage is Stage.RUNNING]
