"""Execution limits of queues: create, replace, list, delete (docs/design.md,
invariant 14).

The lease enforces them (jobqueue_lease_limited); every write here takes
the queue's lease lock, so a lease in flight sees one set of limits.
"""

from __future__ import annotations

from collections.abc import Sequence

from jobqueue import errors, limits
from jobqueue.db import Executor, Record, queries, translate
from jobqueue.limits import Limit, LimitSpec, Per, Rate

Q = queries.load("limits")


def _limit(r: Record) -> Limit:
    rate = None
    if r["rate_count"] is not None:
        rate = Rate(r["rate_count"], r["rate_period_seconds"], r["rate_burst"])
    spec = LimitSpec(
        name=r["name"], per=Per(r["per"]),
        path=None if r["path"] is None else tuple(r["path"]),
        rate=rate, max_concurrent=r["max_concurrent"],
    )
    return Limit(queue=r["queue"], spec=spec, owner=r["owner"],
                 created_at=r["created_at"], updated_at=r["updated_at"])


def _managed(found: Limit) -> str:
    name = f"limit {found.spec.name} of queue {found.queue}"
    if found.owner is None:
        return f"{name} was made through the API; delete it there first"
    return f"{name} is declared by JobQueue {found.owner}; change it there"


@translate
async def put(
    conn: Executor, *, queue: str, spec: LimitSpec, owner: str | None = None
) -> tuple[Limit, bool]:
    """Create or replace; (the limit, whether it is new). A limit of another
    owner is refused with InvalidTransition, bad values with InvalidInput."""
    limits.check(queue, spec)
    rate = spec.rate
    r = await conn.fetchrow(
        Q["put"], queue, spec.name, spec.per.value,
        None if spec.path is None else list(spec.path),
        rate.count if rate else None, rate.period_seconds if rate else None,
        rate.burst if rate else 0, spec.max_concurrent, owner,
    )
    found = await get(conn, queue=queue, name=spec.name)
    if r is None:
        raise errors.InvalidTransition(_managed(found))
    return found, bool(r["created"])


@translate
async def get(conn: Executor, *, queue: str, name: str) -> Limit:
    r = await conn.fetchrow(Q["get"], queue, name)
    if r is None:
        raise errors.NotFound(f"limit {name} of queue {queue} not found")
    return _limit(r)


@translate
async def list_limits(
    conn: Executor, *, queue: str | None, owner: str | None = None
) -> list[Limit]:
    """By queue and name; `queue` None lists every queue's."""
    return [_limit(r) for r in await conn.fetch(Q["list"], queue, owner)]


@translate
async def delete(conn: Executor, *, queue: str, name: str, owner: str | None = None) -> None:
    """Delete one of `owner`'s limits; NotFound or InvalidTransition otherwise."""
    if not await conn.fetchval(Q["delete"], queue, name, owner):
        raise errors.InvalidTransition(_managed(await get(conn, queue=queue, name=name)))


@translate
async def delete_undeclared(
    conn: Executor, *, owner: str, keep: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """Delete `owner`'s limits not in `keep` ((queue, name) each); those deleted."""
    gone = []
    for found in await list_limits(conn, queue=None, owner=owner):
        where = (found.queue, found.spec.name)
        if where not in keep and await conn.fetchval(Q["delete"], *where, owner):
            gone.append(where)
    return gone
