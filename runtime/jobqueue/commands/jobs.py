"""`jobqueue jobs list|show|retry|cancel`: look at and steer jobs (admin).

Without --tenant these act across tenants; with it, a job of another
tenant is "not found", as in the HTTP API.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from jobqueue import db
from jobqueue.commands.common import (
    add_actions,
    job_json,
    print_table,
    run_with_pool,
    tenant_filter,
)
from jobqueue.db import jobs
from jobqueue.models import Job, JobId, JobStatus, Page

# As the API's list: past this, the offset no longer fits the query's integer.
MAX_PAGE = 1_000_000
MAX_PAGE_SIZE = 1000


def register(sub: Any) -> None:
    actions = add_actions(sub, "jobs", help="list, show, retry, cancel jobs")

    ls = actions.add_parser("list", help="newest first")
    ls.add_argument("--tenant")
    ls.add_argument("--status", choices=[s.value for s in JobStatus])
    ls.add_argument("--queue")
    ls.add_argument("--type")
    ls.add_argument("--page", type=int, default=1)
    ls.add_argument("--page-size", type=int, default=50)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)

    for name, help_, fn in [
        ("show", "one job in full, as JSON", run_show),
        ("retry", "dlq or cancelled -> queued", run_retry),
        ("cancel", "queued, leased or running -> cancelled", run_cancel),
    ]:
        a = actions.add_parser(name, help=help_)
        a.add_argument("job_id")
        a.add_argument("--tenant")
        if name == "retry":
            a.add_argument("--reset-attempts", action="store_true",
                           help="start counting attempts from zero again")
        a.set_defaults(func=fn)


def _job_id(raw: str) -> JobId:
    try:
        return JobId(uuid.UUID(raw))
    except ValueError:
        raise ValueError(f"not a job id: {raw!r}") from None


def run_list(args: argparse.Namespace) -> int:
    if not 1 <= args.page <= MAX_PAGE:
        raise ValueError(f"--page must be from 1 to {MAX_PAGE}")
    if not 1 <= args.page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"--page-size must be from 1 to {MAX_PAGE_SIZE}")
    tenant = tenant_filter(args.tenant)

    async def go(pool: db.Pool) -> Page:
        return await jobs.list_jobs(
            pool, tenant_id=tenant,
            status=JobStatus(args.status) if args.status else None,
            queue=args.queue, type=args.type, page=args.page, page_size=args.page_size,
        )

    page = run_with_pool(go)
    if args.json:
        print(json.dumps({"jobs": [job_json(j) for j in page.jobs], "total": page.total,
                          "page": page.page, "page_size": page.page_size}))
        return 0
    header = ("ID", "TENANT", "QUEUE", "TYPE", "STATUS", "ATTEMPT", "CREATED")
    rows = [(str(j.id), j.tenant_id, j.queue, j.type, j.status.value,
             f"{j.attempt}/{j.max_attempts}", j.created_at.strftime("%Y-%m-%d %H:%M:%S"))
            for j in page.jobs]
    print_table(header, rows)
    print(f"page {page.page}, {len(page.jobs)} of {page.total}")
    return 0


def _one(args: argparse.Namespace, call: Callable[[db.Pool], Awaitable[Job]]) -> int:
    job = run_with_pool(call)
    print(json.dumps(job_json(job, full=True), indent=2))
    return 0


def run_show(args: argparse.Namespace) -> int:
    jid, tenant = _job_id(args.job_id), tenant_filter(args.tenant)
    return _one(args, lambda pool: jobs.get(pool, job_id=jid, tenant_id=tenant))


def run_retry(args: argparse.Namespace) -> int:
    jid, tenant = _job_id(args.job_id), tenant_filter(args.tenant)
    return _one(args, lambda pool: jobs.retry(pool, job_id=jid, tenant_id=tenant,
                                              reset_attempts=args.reset_attempts))


def run_cancel(args: argparse.Namespace) -> int:
    jid, tenant = _job_id(args.job_id), tenant_filter(args.tenant)
    return _one(args, lambda pool: jobs.cancel(pool, job_id=jid, tenant_id=tenant))
