"""Event fan-out: routing by tenant, the admin sees all, slow watchers dropped (pure)."""

from __future__ import annotations

import json

from jobqueue.api.hub import Event, Hub, Subscription
from jobqueue.models import TenantId

A, B = TenantId("a"), TenantId("b")


def payload(*rows: tuple[str, str, str, str]) -> str:
    return json.dumps([list(r) for r in rows])


def drain(sub: Subscription) -> list[Event | None]:
    out: list[Event | None] = []
    while not sub.queue.empty():
        out.append(sub.queue.get_nowait())
    return out


def ids(sub: Subscription) -> list[str | None]:
    return [e["job_id"] if e else None for e in drain(sub)]


def test_events_reach_their_tenant_and_the_admin_only_in_order() -> None:
    hub = Hub(queue_size=10)
    sa, sb, admin = hub.subscribe(A), hub.subscribe(B), hub.subscribe(None)
    hub.publish(payload(("j1", "a", "queued", "q"), ("j2", "b", "queued", "q")))
    hub.publish(payload(("j1", "a", "leased", "q")))
    assert [(e["job_id"], e["status"]) for e in drain(sa) if e] == [
        ("j1", "queued"),
        ("j1", "leased"),
    ]
    assert ids(sb) == ["j2"]
    assert ids(admin) == ["j1", "j2", "j1"]


def test_the_admin_sees_every_tenant() -> None:
    hub = Hub(queue_size=10)
    admin = hub.subscribe(None)
    hub.publish(payload(("j1", "a", "queued", "q"), ("j2", "b", "queued", "q")))
    assert [e["tenant_id"] for e in drain(admin) if e] == ["a", "b"]


def test_a_full_queue_drops_that_watcher_only() -> None:
    hub = Hub(queue_size=3)
    slow, fast = hub.subscribe(A), hub.subscribe(A)
    hub.publish(payload(*[(f"j{i}", "a", "queued", "q") for i in range(2)]))
    drain(fast)
    hub.publish(payload(*[(f"k{i}", "a", "queued", "q") for i in range(2)]))
    assert slow.dropped and not fast.dropped
    assert drain(slow) == [None]  # emptied, then closed
    assert ids(fast) == ["k0", "k1"]
    assert hub.subscribers == 1 and hub.dropped_total == 1


def test_resync_reaches_everyone_and_unsubscribe_forgets() -> None:
    hub = Hub(queue_size=10)
    sa, admin = hub.subscribe(A), hub.subscribe(None)
    hub.resync()
    assert [e["type"] for e in drain(sa) if e] == ["resync"]
    assert [e["type"] for e in drain(admin) if e] == ["resync"]
    hub.unsubscribe(sa)
    hub.unsubscribe(admin)
    hub.publish(payload(("j1", "a", "queued", "q")))
    assert hub.subscribers == 0 and drain(sa) == []


def test_a_malformed_payload_is_ignored() -> None:
    hub = Hub(queue_size=10)
    sa = hub.subscribe(A)
    hub.publish("not json")
    assert drain(sa) == []


def test_evicting_a_tenant_ends_its_watchers_with_the_reason_and_no_others() -> None:
    hub = Hub(queue_size=10)
    a1, a2, sb, admin = hub.subscribe(A), hub.subscribe(A), hub.subscribe(B), hub.subscribe(None)
    hub.publish(payload(("j1", "a", "queued", "q")))
    assert hub.evict(A, 4403, "tenant a is disabled") == 2
    for sub in (a1, a2):
        assert drain(sub) == [None]  # pending events dropped, then the end
        assert (sub.close_code, sub.close_reason) == (4403, "tenant a is disabled")
    assert hub.tenants() == [B]
    hub.unsubscribe(a1)  # the socket's own cleanup afterwards is harmless
    hub.publish(payload(("j2", "a", "queued", "q"), ("j3", "b", "queued", "q")))
    assert ids(sb) == ["j3"] and ids(admin) == ["j1", "j2", "j3"]
    assert hub.evict(A, 4403, "again") == 0
