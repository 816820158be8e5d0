"""The heartbeat's one beat on real Postgres: live leases are extended, a
lease lost elsewhere is reported, an outage is counted and survived."""

from __future__ import annotations

from prometheus_client import REGISTRY

from jobqueue import db
from jobqueue.db import jobs, leases
from jobqueue.models import JobId, LeaseToken, WorkerId
from jobqueue.observability import logging as obslog
from jobqueue.observability import metrics
from jobqueue.worker.heartbeat import Heartbeat
from tests import factories


def beat(pool: db.Pool, held: list[tuple[JobId, LeaseToken]],
         lost: list[tuple[JobId, LeaseToken]]) -> Heartbeat:
    return Heartbeat(
        pool=pool, every=1.0, lease_seconds=120, held=lambda: held,
        on_lost=lambda jid, token: lost.append((jid, token)),
        log=obslog.get_logger("test"), db_errors=metrics.DB_ERRORS.labels("test"),
    )


async def test_a_beat_extends_live_leases_and_reports_the_lost_one(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await factories.backlog(pool, t.id, 3)
    got = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=3,
                             lease_seconds=5)
    held = [(lease.job_id, lease.token) for lease in got]
    await jobs.cancel(pool, job_id=got[0].job_id)
    lost: list[tuple[JobId, LeaseToken]] = []

    result = await beat(pool, held, lost).run_once()

    assert result is not None and result.extended == 2
    assert result.not_extended == lost == [held[0]]
    for lease in got[1:]:
        job = await jobs.get(pool, job_id=lease.job_id)
        assert job.lease_expires_at is not None and lease.job.lease_expires_at is not None
        assert (job.lease_expires_at - lease.job.lease_expires_at).total_seconds() > 100


async def test_nothing_held_costs_no_statement(pool: db.Pool) -> None:
    lost: list[tuple[JobId, LeaseToken]] = []
    assert await beat(pool, [], lost).run_once() is None
    assert lost == []


async def test_an_outage_is_counted_and_loses_no_lease(pool: db.Pool) -> None:
    t = await factories.tenant(pool)
    await factories.backlog(pool, t.id, 1)
    (lease,) = await leases.lease(pool, queue="default", worker_id=WorkerId("w"), limit=1,
                                  lease_seconds=60)
    def errors_counted() -> float:
        return REGISTRY.get_sample_value(
            "database_errors_total", {"component": "test"}) or 0.0

    before = errors_counted()
    await pool.close()  # the heartbeat's pool is gone: every call fails
    lost: list[tuple[JobId, LeaseToken]] = []
    hb = beat(pool, [(lease.job_id, lease.token)], lost)
    assert await hb.run_once() is None
    assert lost == []  # a failed beat is not a lost lease
    assert errors_counted() == before + 1
