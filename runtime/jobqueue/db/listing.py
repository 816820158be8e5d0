"""Jobs in pages, newest first, fast at any depth of history.

A page is read in order from an index that starts with the tenant and the
driving filter (db/sql/listing.sql), and a deep page starts at its cursor
rather than skipping the rows before it. Totals are capped counts: exact up
to COUNT_CAP matches, "at least COUNT_CAP" past it, so no request reads
the whole history to count it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jobqueue import errors
from jobqueue.db import Executor, queries, rows, translate
from jobqueue.models import Cursor, JobStatus, Page, TenantId

Q = queries.load("listing")

COUNT_CAP = 1000
MAX_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Filter:
    """Which jobs a listing (or a bulk action) covers; None is no filter."""

    status: JobStatus | None = None
    queue: str | None = None
    type: str | None = None
    # created_at >= created_after and < created_before
    created_after: datetime | None = None
    created_before: datetime | None = None

    def args(self) -> tuple[str | datetime | None, ...]:
        return (
            self.status.value if self.status else None,
            self.queue,
            self.type,
            self.created_after,
            self.created_before,
        )


def choose(f: Filter) -> str:
    """The filter whose index drives the read: status, else queue, else type."""
    if f.status is not None:
        return "by_status"
    if f.queue is not None:
        return "by_queue"
    if f.type is not None:
        return "by_type"
    return "all"


def _check(f: Filter, page: int, page_size: int, after: Cursor | None) -> None:
    if page < 1 or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise errors.InvalidInput(
            f"page must be >= 1 and page_size between 1 and {MAX_PAGE_SIZE}"
        )
    if after is not None and page != 1:
        raise errors.InvalidInput("give either a cursor (after) or a page number, not both")
    if f.created_after and f.created_before and f.created_after >= f.created_before:
        raise errors.InvalidInput("created_after must be earlier than created_before")


def _upper_bound(where: Filter, after: Cursor | None) -> Cursor | None:
    """The lower of the cursor and created_before, as one (created_at, seq)
    bound: `created_at < t` is `(created_at, seq) < (t, 0)`, seq being >= 1."""
    before = Cursor(where.created_before, 0) if where.created_before else None
    if after is None or before is None:
        return after or before
    return min(after, before, key=lambda c: (c.created_at, c.seq))


@translate
async def count(
    conn: Executor, *, tenant_id: TenantId | None, where: Filter, cap: int = COUNT_CAP
) -> tuple[int, bool]:
    """(matches, exact): exact below `cap`; at `cap` there may be more."""
    n = await conn.fetchval(Q[f"count_{choose(where)}"], tenant_id, *where.args(), cap)
    return int(n), n < cap


@translate
async def page(
    conn: Executor,
    *,
    tenant_id: TenantId | None,
    where: Filter = Filter(),
    after: Cursor | None = None,
    page: int = 1,
    page_size: int = 50,
) -> Page:
    """One page newest first; `next` is set when more rows follow.

    With `after` (a cursor from an earlier page) the page starts just past
    it, at the cost of one index descent however deep. `page` numbers are
    offsets, kept for old clients: page n reads the n - 1 pages before it.
    """
    _check(where, page, page_size, after)
    upper = _upper_bound(where, after)
    found = await conn.fetch(
        Q[f"page_{choose(where)}"],
        tenant_id,
        *where.args()[:4],
        upper.created_at if upper else None,
        upper.seq if upper else None,
        page_size + 1,
        (page - 1) * page_size,
    )
    more = len(found) > page_size
    jobs = [rows.job(r) for r in found[:page_size]]
    total, exact = await count(conn, tenant_id=tenant_id, where=where)
    last = jobs[-1] if jobs else None
    return Page(
        jobs=jobs,
        total=total,
        page=page,
        page_size=page_size,
        total_exact=exact,
        next=Cursor(last.created_at, last.seq) if more and last else None,
    )
