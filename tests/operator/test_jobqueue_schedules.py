"""A JobQueue's spec.schedules against a real kube-apiserver and a real
PostgreSQL: synced on reconcile, removed when no longer declared, fire
times and skips in status, bad ones refused, and removed from the
database by the finalizer when the JobQueue is deleted (waiting out an
outage, finding the database when the Secret went first, never holding a
JobQueue whose database was never known) (docs/design.md, invariant 13)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from jobqueue import db
from jobqueue.db import schedules
from jobqueue.models import TenantId
from jobqueue.observability import logging as obslog
from jobqueue.reaper.scheduler import Scheduler
from tests import factories
from tests.operator import harness
from tests.operator.harness import (
    Cluster,
    Running,
    database_namespace,
    eventually,
)

pytestmark = pytest.mark.timeout(120)

NIGHTLY = {"name": "nightly", "tenant": "acme", "cron": "30 2 * * *",
           "timezone": "Europe/Berlin", "type": "report", "data": {"kind": "daily"}}
HOURLY = {"name": "hourly", "tenant": "acme", "cron": "0 * * * *", "type": "sweep",
          "overlap": "skip", "missed": "run_once", "priority": "high", "maxAttempts": 2}


@pytest.fixture(scope="module")
def ns(cluster: Cluster, running: Running) -> str:
    namespace = database_namespace(cluster, running, "jq-sched")
    # Through the operator's proxy, so a test can cut this database off.
    cluster.secret(namespace, "via-proxy", {"url": running.proxy.dsn_via(running.dsn)})
    return namespace


@pytest.fixture
async def acme(pool: db.Pool) -> TenantId:
    if await pool.fetchval("SELECT count(*) FROM tenants WHERE id = 'acme'") == 0:
        await factories.tenant(pool, "acme")
    return TenantId("acme")


def jobqueue(
    name: str, namespace: str, scheds: list[dict[str, Any]], secret: str = "jobqueue-database"
) -> dict[str, Any]:
    return harness.jobqueue(name, namespace, schedules=scheds,
                            databaseSecretRef={"name": secret, "key": "url"})


def status_schedules(cluster: Cluster, name: str, ns: str) -> list[dict[str, Any]] | None:
    return (cluster.get("JobQueue", name, ns).get("status") or {}).get("schedules")


async def owned(pool: db.Pool, ns: str, name: str) -> dict[str, Any]:
    found = await schedules.list_schedules(pool, tenant_id=None, owner=f"{ns}/{name}")
    return {s.spec.name: s for s in found}


async def test_declared_schedules_are_synced_replaced_and_removed(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool, acme: TenantId
) -> None:
    name = f"q-{uuid.uuid4().hex[:8]}"
    cluster.create(jobqueue(name, ns, [NIGHTLY, HOURLY]))

    async def both() -> dict[str, Any] | None:
        found = await owned(pool, ns, name)
        return found if len(found) == 2 else None

    found = await eventually(both, what="both schedules in the database")
    nightly, hourly = found["nightly"], found["hourly"]
    assert (nightly.spec.queue, nightly.spec.timezone, nightly.spec.data) == (
        name, "Europe/Berlin", {"kind": "daily"})
    assert (hourly.spec.overlap.value, hourly.spec.missed.value, hourly.spec.max_attempts,
            hourly.spec.priority.name) == ("skip", "run_once", 2, "HIGH")

    def shown() -> list[dict[str, Any]] | None:
        got = status_schedules(cluster, name, ns)
        return got if got and len(got) == 2 else None

    status = {s["name"]: s for s in await eventually(shown, what="status.schedules")}
    assert status["nightly"]["tenant"] == "acme"
    assert status["nightly"]["nextFireTime"] == nightly.next_fire_at.isoformat().replace(
        "+00:00", "Z")
    assert "lastFireTime" not in status["hourly"]

    # Keep nightly with a new payload (its next fire time stays), drop hourly.
    changed = {**NIGHTLY, "data": {"kind": "weekly"}}
    cluster.patch("JobQueue", name, {"spec": {"schedules": [changed]}}, ns)

    async def replaced() -> dict[str, Any] | None:
        now = await owned(pool, ns, name)
        ok = list(now) == ["nightly"] and now["nightly"].spec.data == {"kind": "weekly"}
        return now if ok else None

    now = await eventually(replaced, what="hourly removed, nightly replaced")
    assert now["nightly"].id == nightly.id
    assert now["nightly"].next_fire_at == nightly.next_fire_at

    # Fired by a reaper: the status shows the last fire time.
    await pool.execute("UPDATE schedules SET next_fire_at = now() - interval '1 minute'"
                       " WHERE id = $1", nightly.id)
    fired = await Scheduler(pool, grace_seconds=3600, batch=10, interval=1,
                            log=obslog.get_logger("test")).run_once()
    assert fired.fired == 1

    def last_fired() -> str | None:
        got = status_schedules(cluster, name, ns) or [{}]
        return got[0].get("lastFireTime")

    assert (await eventually(last_fired, what="lastFireTime")).endswith("Z")

    cluster.delete("JobQueue", name, ns)

    async def forgotten() -> bool:
        return not await owned(pool, ns, name)

    await eventually(forgotten, what="the deleted JobQueue's schedules removed")


async def test_a_bad_cron_is_invalid_spec_and_changes_nothing(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool, acme: TenantId
) -> None:
    name = f"q-{uuid.uuid4().hex[:8]}"
    cluster.create(jobqueue(name, ns, [{**NIGHTLY, "cron": "61 * * * *"}]))

    def invalid() -> dict[str, Any] | None:
        cond = cluster.condition("JobQueue", name, namespace=ns)
        return cond if cond and cond["reason"] == "InvalidSpec" else None

    cond = await eventually(invalid, what="InvalidSpec")
    assert "minute" in cond["message"] and "acme/nightly" in cond["message"]
    assert await owned(pool, ns, name) == {}
    for bad_zone in ({**NIGHTLY, "timezone": "Mars/Olympus"},):
        cluster.patch("JobQueue", name, {"spec": {"schedules": [bad_zone]}}, ns)

        def zone_refused() -> bool:
            c = cluster.condition("JobQueue", name, namespace=ns) or {}
            return "time zone" in c.get("message", "")

        await eventually(zone_refused, what="unknown zone reported")
    assert await owned(pool, ns, name) == {}


async def test_an_unknown_tenant_is_reported_and_the_rest_synced(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool, acme: TenantId
) -> None:
    name = f"q-{uuid.uuid4().hex[:8]}"
    cluster.create(jobqueue(name, ns, [NIGHTLY, {**HOURLY, "tenant": "ghost"}]))

    def reported() -> dict[str, Any] | None:
        cond = cluster.condition("JobQueue", name, namespace=ns)
        return cond if cond and cond["reason"] == "SchedulesNotSynced" else None

    cond = await eventually(reported, what="SchedulesNotSynced")
    assert "ghost/hourly" in cond["message"]
    assert list(await owned(pool, ns, name)) == ["nightly"]


@pytest.mark.parametrize(
    ("schedule", "phrase"),
    [
        ({**NIGHTLY, "cron": "* * * *"}, "cron"),
        ({**NIGHTLY, "overlap": "sometimes"}, "overlap"),
        ({**NIGHTLY, "missed": "all"}, "missed"),
        ({**NIGHTLY, "tenant": "Not_A_Tenant"}, "tenant"),
        ({**NIGHTLY, "maxAttempts": 0}, "maxAttempts"),
    ],
)
def test_the_schema_refuses_malformed_schedules(
    cluster: Cluster, ns: str, schedule: dict[str, Any], phrase: str
) -> None:
    with pytest.raises(ApiException) as rejected:
        cluster.create(jobqueue(f"q-{uuid.uuid4().hex[:8]}", ns, [schedule]))
    assert rejected.value.status == 422
    assert phrase in str(rejected.value.body)


def test_the_schema_refuses_two_schedules_with_one_tenant_and_name(
    cluster: Cluster, ns: str
) -> None:
    with pytest.raises(ApiException) as rejected:
        cluster.create(jobqueue(f"q-{uuid.uuid4().hex[:8]}", ns, [NIGHTLY, dict(NIGHTLY)]))
    assert rejected.value.status == 422
    assert "Duplicate" in str(rejected.value.body)


async def test_a_refused_fire_shows_in_status(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool
) -> None:
    tenant = await factories.tenant(pool, f"full-{uuid.uuid4().hex[:6]}", max_queued=1)
    await factories.submit(pool, tenant.id)  # the backlog is at its cap
    name = f"q-{uuid.uuid4().hex[:8]}"
    cluster.create(jobqueue(name, ns, [{**NIGHTLY, "tenant": tenant.id}]))

    async def synced() -> dict[str, Any] | None:
        found = await owned(pool, ns, name)
        return found or None

    made = (await eventually(synced, what="the schedule in the database"))["nightly"]
    await pool.execute("UPDATE schedules SET next_fire_at = now() - interval '1 minute'"
                       " WHERE id = $1", made.id)
    fired = await Scheduler(pool, grace_seconds=3600, batch=10, interval=1,
                            log=obslog.get_logger("test")).run_once()
    assert (fired.fired, fired.refused) == (0, 1)

    def skipped() -> dict[str, Any] | None:
        got = (status_schedules(cluster, name, ns) or [{}])[0]
        return got if "lastSkipReason" in got else None

    shown = await eventually(skipped, what="status.schedules[0].lastSkipReason")
    assert (shown["lastSkipReason"], shown["skippedFires"]) == ("backlog_full", 1)
    assert shown["lastSkipTime"].endswith("Z") and "lastFireTime" not in shown


# ---- deletion: the finalizer -------------------------------------------------------------

FINALIZER = "jobqueue.dev/finalizer"


def ticks(name: str, *suffixes: str) -> list[dict[str, Any]]:
    """Schedules of acme named for this JobQueue: (tenant, name) is unique
    across the JobQueues this module leaves behind."""
    return [{"name": f"{name}-{x}", "tenant": "acme", "cron": "* * * * *", "type": "tick"}
            for x in suffixes]


async def synced_with_finalizer(
    cluster: Cluster, pool: db.Pool, ns: str, name: str, want: list[str]
) -> None:
    async def there() -> bool:
        return sorted(await owned(pool, ns, name)) == want

    await eventually(there, what=f"{want} in the database")
    assert FINALIZER in (cluster.get("JobQueue", name, ns)["metadata"].get("finalizers") or [])


async def gone(cluster: Cluster, name: str, ns: str, timeout: float = 20.0) -> None:
    await eventually(lambda: not cluster.exists("JobQueue", name, ns), timeout=timeout,
                     what=f"JobQueue {name} gone")


async def test_deletion_waits_for_the_database_then_removes_the_schedules(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool, acme: TenantId
) -> None:
    name = f"q-{uuid.uuid4().hex[:8]}"
    cluster.create(jobqueue(name, ns, ticks(name, "a", "b"), secret="via-proxy"))
    await synced_with_finalizer(cluster, pool, ns, name, [f"{name}-a", f"{name}-b"])
    running.proxy.cut()
    try:
        cluster.delete("JobQueue", name, ns)
        await asyncio.sleep(3.0)  # three retries' worth: the finalizer holds
        held = cluster.get("JobQueue", name, ns)
        assert held["metadata"]["deletionTimestamp"]
        assert sorted(await owned(pool, ns, name)) == [f"{name}-a", f"{name}-b"]
    finally:
        running.proxy.restore()
    await gone(cluster, name, ns, timeout=30)
    assert await owned(pool, ns, name) == {}
    # Nothing wrote them back (a status reconcile in flight, say) meanwhile.
    await asyncio.sleep(2.0)
    assert await owned(pool, ns, name) == {}


async def test_the_schedules_go_even_when_the_secret_went_first(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool, acme: TenantId
) -> None:
    # As when a namespace is deleted: its Secrets go with everything else.
    name = f"q-{uuid.uuid4().hex[:8]}"
    secret = f"db-{name}"
    cluster.secret(ns, secret, {"url": running.dsn})
    cluster.create(jobqueue(name, ns, ticks(name, "a"), secret=secret))
    await synced_with_finalizer(cluster, pool, ns, name, [f"{name}-a"])
    cluster.core.delete_namespaced_secret(secret, ns)
    cluster.delete("JobQueue", name, ns)
    await gone(cluster, name, ns)
    assert await owned(pool, ns, name) == {}


async def test_a_jobqueue_whose_database_was_never_known_is_not_held(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool, acme: TenantId
) -> None:
    name = f"q-{uuid.uuid4().hex[:8]}"
    cluster.create(jobqueue(name, ns, ticks(name, "a"), secret="no-such-secret"))

    def reported() -> bool:
        cond = cluster.condition("JobQueue", name, namespace=ns) or {}
        return cond.get("reason") == "DatabaseSecretMissing"

    await eventually(reported, what="DatabaseSecretMissing")
    assert FINALIZER in (cluster.get("JobQueue", name, ns)["metadata"].get("finalizers") or [])
    cluster.delete("JobQueue", name, ns)
    await gone(cluster, name, ns)


async def test_after_the_cleanup_timeout_the_jobqueue_goes_with_a_warning(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool, acme: TenantId,
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    name = f"q-{uuid.uuid4().hex[:8]}"
    cluster.create(jobqueue(name, ns, ticks(name, "a"), secret="via-proxy"))
    await synced_with_finalizer(cluster, pool, ns, name, [f"{name}-a"])
    monkeypatch.setattr(running.op.memo.ctx.settings, "cleanup_timeout_seconds", 2.0)
    running.proxy.cut()
    try:
        cluster.delete("JobQueue", name, ns)
        await gone(cluster, name, ns)
    finally:
        running.proxy.restore()
    # The operator says what stayed (its per-object logger: kopf also posts an Event).
    assert any(r.levelname == "WARNING" and "gave up removing" in r.getMessage()
               for r in caplog.records)
    # Left in the database, as the warning says: remove it as the docs say.
    assert list(await owned(pool, ns, name)) == [f"{name}-a"]
    await pool.execute("DELETE FROM schedules WHERE owner = $1", f"{ns}/{name}")
