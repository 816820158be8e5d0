"""Fan-out of job events from one LISTEN connection to WebSocket subscribers.

`publish` runs on the event loop, called by the listener for each NOTIFY
payload (a JSON array of `[job_id, tenant_id, status, queue]` for a state
change, `[job_id, tenant_id, status, queue, progress, note]` for a
`ctx.progress()` report, which becomes a `progress` event). It never
waits: each subscriber has a bounded queue, and a subscriber whose queue is
full is dropped (its queue is emptied and closed with a final `None`), so one
slow client can neither block the others nor grow memory.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal, NotRequired, TypedDict

from structlog.typing import FilteringBoundLogger

from jobqueue.models import TenantId
from jobqueue.observability import logging as obslog

# WebSocket close code for a watcher that fell too far behind: try again later.
TOO_SLOW = 1013


def _log() -> FilteringBoundLogger:
    # Looked up per use: a logger bound at import would keep the logging
    # configuration of import time, not the one the command sets up.
    return obslog.get_logger(__name__)


class Event(TypedDict):
    type: Literal["job", "progress", "resync"]
    job_id: str | None
    tenant_id: str | None
    status: str | None
    queue: str | None
    progress: NotRequired[float | None]
    note: NotRequired[str | None]


def _event(row: list[Any]) -> Event:
    if len(row) == 6:
        return {"type": "progress", "job_id": row[0], "tenant_id": row[1], "status": row[2],
                "queue": row[3], "progress": row[4], "note": row[5]}
    job_id, tenant_id, status, queue = row
    return {"type": "job", "job_id": job_id, "tenant_id": tenant_id, "status": status,
            "queue": queue}


class Subscription:
    """One watcher. `tenant_id` None sees every tenant (the admin)."""

    def __init__(self, tenant_id: TenantId | None, size: int) -> None:
        self.tenant_id = tenant_id
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(maxsize=size)
        self.dropped = False
        # Why the hub ended it, for the socket's close frame.
        self.close_code = TOO_SLOW
        self.close_reason = "too slow: events were dropped"

    def offer(self, event: Event) -> bool:
        """Queue the event; False (and the subscription closed) if it is full."""
        if self.dropped:
            return False
        try:
            self.queue.put_nowait(event)
            return True
        except asyncio.QueueFull:
            self.close()
            return False

    def close(self, code: int | None = None, reason: str | None = None) -> None:
        if code is not None:
            self.close_code = code
        if reason is not None:
            self.close_reason = reason
        self.dropped = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class Hub:
    def __init__(self, queue_size: int) -> None:
        self._size = queue_size
        self._by_tenant: dict[TenantId, set[Subscription]] = {}
        self._admins: set[Subscription] = set()
        self.dropped_total = 0

    def subscribe(self, tenant_id: TenantId | None) -> Subscription:
        sub = Subscription(tenant_id, self._size)
        if tenant_id is None:
            self._admins.add(sub)
        else:
            self._by_tenant.setdefault(tenant_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub.tenant_id is None:
            self._admins.discard(sub)
            return
        subs = self._by_tenant.get(sub.tenant_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_tenant[sub.tenant_id]

    def tenants(self) -> list[TenantId]:
        """The tenants with a watcher now (not the admin's)."""
        return list(self._by_tenant)

    def evict(self, tenant_id: TenantId, code: int, reason: str) -> int:
        """End every watcher of the tenant with this close code; how many."""
        subs = self._by_tenant.pop(tenant_id, set())
        for sub in subs:
            sub.close(code, reason)
        return len(subs)

    @property
    def subscribers(self) -> int:
        return len(self._admins) + sum(len(s) for s in self._by_tenant.values())

    def publish(self, payload: str) -> None:
        if not self._admins and not self._by_tenant:
            return
        try:
            rows = json.loads(payload)
        except ValueError:
            _log().warning("ignoring a malformed job event")
            return
        for row in rows:
            try:
                event = _event(row)
            except (ValueError, TypeError):
                _log().warning("ignoring a malformed job event")
                continue
            tenant = TenantId(event["tenant_id"] or "")
            for sub in (*self._by_tenant.get(tenant, ()), *self._admins):
                if not sub.offer(event):
                    self._drop(sub)

    def resync(self) -> None:
        """The listener (re)connected: events may have been missed meanwhile."""
        event: Event = {
            "type": "resync",
            "job_id": None,
            "tenant_id": None,
            "status": None,
            "queue": None,
        }
        for sub in [*self._admins, *(s for subs in self._by_tenant.values() for s in subs)]:
            if not sub.offer(event):
                self._drop(sub)

    def _drop(self, sub: Subscription) -> None:
        self.unsubscribe(sub)
        self.dropped_total += 1
        _log().info("dropped a slow watcher", tenant_id=sub.tenant_id)
