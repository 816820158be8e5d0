"""A JobQueue's spec.limits against a real kube-apiserver and a real
PostgreSQL: synced on reconcile, replaced, removed when no longer declared
or with the JobQueue, held by the lease; bad ones refused (docs/design.md,
invariant 14)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from jobqueue import db
from jobqueue.db import leases, limits
from jobqueue.limits import Limit, LimitSpec, Per, Rate
from jobqueue.models import WorkerId
from tests import factories
from tests.operator import harness
from tests.operator.harness import (
    Cluster,
    Running,
    database_namespace,
    eventually,
)

pytestmark = pytest.mark.timeout(120)

PER_CUSTOMER = {"name": "per-customer", "per": "data", "path": ["customer"],
                "maxConcurrent": 2, "rate": {"count": 10, "periodSeconds": 1, "burst": 5}}
WHOLE = {"name": "whole", "maxConcurrent": 50}


@pytest.fixture(scope="module")
def ns(cluster: Cluster, running: Running) -> str:
    return database_namespace(cluster, running, "jq-limits")


def jobqueue(name: str, namespace: str, declared: list[dict[str, Any]]) -> dict[str, Any]:
    return harness.jobqueue(name, namespace, limits=declared)


async def owned(pool: db.Pool, ns: str, name: str) -> dict[str, Limit]:
    return {x.spec.name: x for x in await limits.list_limits(pool, queue=None,
                                                             owner=f"{ns}/{name}")}


async def test_declared_limits_are_synced_held_replaced_and_removed(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool
) -> None:
    name = f"q-{uuid.uuid4().hex[:8]}"
    cluster.create(jobqueue(name, ns, [PER_CUSTOMER, WHOLE]))

    async def both() -> dict[str, Limit] | None:
        found = await owned(pool, ns, name)
        return found if len(found) == 2 else None

    found = await eventually(both, what="both limits in the database")
    assert found["per-customer"].queue == name
    assert found["per-customer"].spec == LimitSpec(
        name="per-customer", per=Per.DATA, path=("customer",),
        rate=Rate(10, 1.0, 5), max_concurrent=2)
    assert found["whole"].spec == LimitSpec(name="whole", max_concurrent=50)

    t = await factories.tenant(pool, max_concurrent=1000)
    await factories.backlog(pool, t.id, 5, queue=name, data={"customer": "a"})
    held = await leases.lease(pool, queue=name, worker_id=WorkerId("w"), limit=5,
                              lease_seconds=60)
    assert len(held) == 2  # the declared cap per customer

    cluster.patch("JobQueue", name, {"spec": {"limits": [{**WHOLE, "maxConcurrent": 7}]}}, ns)

    async def replaced() -> dict[str, Limit] | None:
        now = await owned(pool, ns, name)
        ok = list(now) == ["whole"] and now["whole"].spec.max_concurrent == 7
        return now if ok else None

    await eventually(replaced, what="per-customer removed, whole replaced")
    more = await leases.lease(pool, queue=name, worker_id=WorkerId("w"), limit=5,
                              lease_seconds=60)
    assert len(more) == 3  # no cap per customer any more

    cluster.delete("JobQueue", name, ns)

    async def forgotten() -> bool:
        return not await owned(pool, ns, name)

    await eventually(forgotten, what="the deleted JobQueue's limits removed")
    assert not await pool.fetchval("SELECT limited FROM queues WHERE name = $1", name)


async def test_a_name_the_api_holds_is_reported_and_the_rest_synced(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool
) -> None:
    name = f"q-{uuid.uuid4().hex[:8]}"
    await limits.put(pool, queue=name, spec=LimitSpec(name="whole", max_concurrent=1))
    cluster.create(jobqueue(name, ns, [PER_CUSTOMER, WHOLE]))

    def reported() -> dict[str, Any] | None:
        cond = cluster.condition("JobQueue", name, namespace=ns)
        return cond if cond and cond["reason"] == "LimitsNotSynced" else None

    cond = await eventually(reported, what="LimitsNotSynced")
    assert "limits[whole]" in cond["message"]
    assert list(await owned(pool, ns, name)) == ["per-customer"]
    kept = await limits.get(pool, queue=name, name="whole")
    assert (kept.owner, kept.spec.max_concurrent) == (None, 1)


async def test_a_limit_without_rate_or_cap_is_invalid_spec_and_changes_nothing(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool
) -> None:
    name = f"q-{uuid.uuid4().hex[:8]}"
    cluster.create(jobqueue(name, ns, [{"name": "empty", "per": "tenant"}]))

    def invalid() -> dict[str, Any] | None:
        cond = cluster.condition("JobQueue", name, namespace=ns)
        return cond if cond and cond["reason"] == "InvalidSpec" else None

    cond = await eventually(invalid, what="InvalidSpec")
    assert "limits[empty]" in cond["message"] and "max_concurrent" in cond["message"]
    assert await owned(pool, ns, name) == {}


@pytest.mark.parametrize(
    ("limit", "phrase"),
    [
        ({**WHOLE, "per": "customer"}, "per"),
        ({**WHOLE, "maxConcurrent": 0}, "maxConcurrent"),
        ({**WHOLE, "name": "Not_A_Label"}, "name"),
        ({**WHOLE, "rate": {"count": 1}}, "periodSeconds"),
        ({**WHOLE, "path": []}, "path"),
    ],
)
def test_the_schema_refuses_malformed_limits(
    cluster: Cluster, ns: str, limit: dict[str, Any], phrase: str
) -> None:
    with pytest.raises(ApiException) as rejected:
        cluster.create(jobqueue(f"q-{uuid.uuid4().hex[:8]}", ns, [limit]))
    assert rejected.value.status == 422
    assert phrase in str(rejected.value.body)
