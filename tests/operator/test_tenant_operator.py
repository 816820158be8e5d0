"""Tenant resources against a real kube-apiserver, the operator running in-process.

The operator writes into a database of this module's own, reached through a
TCP proxy that the outage test cuts.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Iterator

import pytest
from kubernetes.client.exceptions import ApiException

from jobqueue import apikeys, db, errors
from jobqueue.db import jobs
from jobqueue.db import tenants as tenant_rows
from jobqueue.models import NewJob, TenantId
from tests.envtest import ControlPlane
from tests.operator.harness import Cluster, Running, eventually, operator_running

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def running(control_plane: ControlPlane, cluster: Cluster, op_database: str) -> Iterator[Running]:
    with operator_running(control_plane, cluster, op_database) as running:
        yield running


def tenant(name: str, **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "jobqueue.dev/v1alpha1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": spec,
    }


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def ready(cluster: Cluster, name: str, timeout: float = 20.0) -> dict[str, object]:
    def probe() -> dict[str, object] | None:
        cond = cluster.condition("Tenant", name)
        return cond if cond and cond["status"] == "True" else None

    return await eventually(probe, timeout=timeout, what=f"Tenant {name} Ready")


async def test_applying_a_tenant_writes_its_row_and_key_and_makes_it_ready(
    running: Running, cluster: Cluster, control_plane: ControlPlane, pool: db.Pool
) -> None:
    name = unique()
    cluster.create(
        tenant(
            name,
            weight=3,
            quotas={
                "maxConcurrentJobs": 7,
                "maxQueuedJobs": 500,
                "rateLimit": {"requestsPerMinute": 120, "burst": 20},
            },
        )
    )
    control_plane.kubectl("wait", "--for=condition=Ready", "--timeout=30s", f"tenant/{name}")

    row = await tenant_rows.get(pool, tenant_id=TenantId(name))
    assert (row.enabled, row.max_concurrent, row.max_queued) == (True, 7, 500)
    assert (row.rate_per_minute, row.rate_burst, row.weight) == (120, 20, 3)

    secret = cluster.core.read_namespaced_secret(f"jobqueue-tenant-{name}", running.namespace)
    assert secret.data is not None and secret.metadata is not None
    key = base64.b64decode(secret.data["api-key"]).decode()
    assert key.startswith("jq_")
    assert secret.metadata.labels["app.kubernetes.io/managed-by"] == "jobqueue-operator"
    owner = secret.metadata.owner_references[0]
    assert (owner.kind, owner.name) == ("Tenant", name)
    creds = await tenant_rows.credentials(pool, tenant_id=TenantId(name))
    assert apikeys.matches(key, creds.key_hashes)

    status = cluster.get("Tenant", name)["status"]
    assert status["observedGeneration"] == 1
    assert status["apiKeySecret"] == {
        "namespace": running.namespace,
        "name": f"jobqueue-tenant-{name}",
        "key": "api-key",
    }
    types = {c["type"]: c for c in status["conditions"]}
    assert types["Degraded"]["status"] == "False"
    assert types["Ready"]["observedGeneration"] == 1


async def test_changing_a_quota_updates_the_row_and_keeps_the_key(
    running: Running, cluster: Cluster, pool: db.Pool
) -> None:
    name = unique()
    cluster.create(tenant(name, quotas={"maxConcurrentJobs": 5}))
    await ready(cluster, name)
    first = await tenant_rows.credentials(pool, tenant_id=TenantId(name))

    cluster.patch("Tenant", name, {"spec": {"quotas": {"maxConcurrentJobs": 50}, "weight": 9}})

    async def updated() -> bool:
        row = await tenant_rows.get(pool, tenant_id=TenantId(name))
        return row.max_concurrent == 50 and row.weight == 9

    await eventually(updated, what="row updated")
    cluster.patch("Tenant", name, {"spec": {"enabled": False}})

    async def disabled() -> bool:
        return not (await tenant_rows.get(pool, tenant_id=TenantId(name))).enabled

    await eventually(disabled, what="row disabled")
    await eventually(
        lambda: cluster.get("Tenant", name)["status"]["observedGeneration"] == 3,
        what="observedGeneration 3",
    )
    again = await tenant_rows.credentials(pool, tenant_id=TenantId(name))
    assert again.key_hashes == first.key_hashes  # no new key on a quota change


async def test_tenant_status_counts_its_jobs(
    running: Running, cluster: Cluster, pool: db.Pool
) -> None:
    name = unique()
    cluster.create(tenant(name))
    await ready(cluster, name)
    for n in range(3):
        await jobs.submit(pool, tenant_id=TenantId(name), job=NewJob(type="echo", data={"n": n}))

    def counted() -> bool:
        status = cluster.get("Tenant", name)["status"]
        return status.get("queuedJobs") == 3 and status.get("runningJobs") == 0

    await eventually(counted, what="queuedJobs 3 in status")


async def test_deleting_a_tenant_disables_it_and_keeps_its_jobs(
    running: Running, cluster: Cluster, pool: db.Pool
) -> None:
    name = unique()
    cluster.create(tenant(name))
    await ready(cluster, name)
    job = (await jobs.submit(pool, tenant_id=TenantId(name), job=NewJob(type="echo", data={}))).job
    assert cluster.get("Tenant", name)["metadata"]["finalizers"] == ["jobqueue.dev/finalizer"]

    cluster.delete("Tenant", name)
    await eventually(lambda: not cluster.exists("Tenant", name), what="Tenant gone")

    row = await tenant_rows.get(pool, tenant_id=TenantId(name))
    assert row.enabled is False
    assert (await jobs.get(pool, job_id=job.id)).id == job.id
    assert (await tenant_rows.credentials(pool, tenant_id=TenantId(name))).key_hashes == []
    with pytest.raises(ApiException) as gone:
        cluster.core.read_namespaced_secret(f"jobqueue-tenant-{name}", running.namespace)
    assert gone.value.status == 404


async def test_a_named_secret_is_used_and_waited_for(
    running: Running, cluster: Cluster, pool: db.Pool
) -> None:
    name = unique()
    secret_name = unique("key")
    cluster.create(tenant(name, apiKeySecretRef={"name": secret_name, "key": "token"}))

    def missing() -> bool:
        cond = cluster.condition("Tenant", name)
        return bool(cond and cond["reason"] == "ApiKeySecretMissing" and cond["status"] == "False")

    await eventually(missing, what="ApiKeySecretMissing")
    assert secret_name in (cluster.condition("Tenant", name) or {})["message"]

    key = apikeys.generate()
    cluster.secret(running.namespace, secret_name, {"token": key})
    await ready(cluster, name)  # kopf's retry picks the Secret up
    creds = await tenant_rows.credentials(pool, tenant_id=TenantId(name))
    assert apikeys.matches(key, creds.key_hashes)
    assert len(creds.key_hashes) == 1


async def test_a_key_that_belongs_to_another_tenant_is_refused(
    running: Running, cluster: Cluster, pool: db.Pool
) -> None:
    first, second = unique(), unique()
    cluster.create(tenant(first))
    await ready(cluster, first)
    stolen = f"jobqueue-tenant-{first}"
    cluster.create(tenant(second, apiKeySecretRef={"name": stolen}))

    def refused() -> bool:
        cond = cluster.condition("Tenant", second)
        return bool(cond and cond["reason"] == "ApiKeyInUse")

    await eventually(refused, what="ApiKeyInUse")
    assert (await tenant_rows.credentials(pool, tenant_id=TenantId(second))).key_hashes == []


async def test_database_outage_reports_not_ready_and_recovers(
    running: Running, cluster: Cluster, pool: db.Pool
) -> None:
    name = unique()
    running.proxy.cut()
    try:
        cluster.create(tenant(name, weight=4))

        def down() -> dict[str, object] | None:
            cond = cluster.condition("Tenant", name)
            return cond if cond and cond["reason"] == "DatabaseUnavailable" else None

        cond = await eventually(down, what="DatabaseUnavailable")
        assert cond["status"] == "False"
        assert running.proxy.dsn_via(running.dsn) not in str(cond["message"])
        with pytest.raises(errors.TenantNotFound):
            await tenant_rows.get(pool, tenant_id=TenantId(name))
        assert running.op.alive
    finally:
        running.proxy.restore()
    await ready(cluster, name, timeout=30)
    assert (await tenant_rows.get(pool, tenant_id=TenantId(name))).weight == 4


async def test_deletion_waits_for_the_database_then_disables(
    running: Running, cluster: Cluster, pool: db.Pool
) -> None:
    name = unique()
    cluster.create(tenant(name))
    await ready(cluster, name)
    running.proxy.cut()
    try:
        cluster.delete("Tenant", name)
        await asyncio.sleep(2.0)  # two retries' worth: the finalizer holds
        held = cluster.get("Tenant", name)
        assert held["metadata"]["deletionTimestamp"]
        assert (await tenant_rows.get(pool, tenant_id=TenantId(name))).enabled is True
    finally:
        running.proxy.restore()
    await eventually(lambda: not cluster.exists("Tenant", name), timeout=30, what="Tenant gone")
    assert (await tenant_rows.get(pool, tenant_id=TenantId(name))).enabled is False


def test_the_apiserver_rejects_invalid_tenants(running: Running, cluster: Cluster) -> None:
    for bad in (
        tenant("bad.name"),  # a tenant id is a DNS label
        tenant(unique(), weight=0),
        tenant(unique(), quotas={"maxConcurrentJobs": -1}),
        tenant(unique(), quotas={"rateLimit": {"burst": 0}}),
    ):
        with pytest.raises(ApiException) as rejected:
            cluster.create(bad)
        assert rejected.value.status == 422, bad
