"""`jobqueue dev`: everything on one machine on an embedded PostgreSQL.

Until the worker exists this migrates, creates a demo tenant and runs a few
demo jobs through the db layer.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from jobqueue import db
from jobqueue.commands.migrate import migrate
from jobqueue.db import jobs, leases, tenants
from jobqueue.embedded import EmbeddedPostgres
from jobqueue.models import NewJob, TenantId, TenantQuotas, WorkerId
from jobqueue.settings import DatabaseSettings


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("dev", help="run everything on one machine")
    p.set_defaults(func=run)


async def demo(dsn: str) -> None:
    await migrate(dsn)
    pool = await db.create_pool(dsn)
    try:
        tenant = await tenants.upsert(pool, tenant_id=TenantId("demo"), quotas=TenantQuotas())
        print(f"tenant {tenant.id} ready")
        for i in range(3):
            s = await jobs.submit(pool, tenant_id=tenant.id, job=NewJob(type="echo", data={"i": i}))
            print(f"submitted {s.job.id} ({s.job.status})")
        held = await leases.lease(
            pool, queue="default", worker_id=WorkerId("dev"), limit=10, lease_seconds=30
        )
        done = await leases.ack(pool, done=[(h.job_id, h.token, h.job.data) for h in held])
        for t in done:
            print(f"job {t.job_id} {t.status}")
    finally:
        await pool.close()


def run(args: argparse.Namespace) -> int:
    settings = DatabaseSettings()
    if settings.url is not None:
        asyncio.run(demo(settings.dsn()))
        return 0
    with EmbeddedPostgres() as pg:
        print(f"embedded PostgreSQL at {pg.dsn}")
        asyncio.run(demo(pg.dsn))
    return 0
