"""spec.autoscaling.mode on a real apiserver: hpa (ours, with a scale-down
window and an optional age metric), keda (a ScaledObject whose query the
real database answers like our metric), none (fixed replicas), and switching
between them leaves no child of the old mode behind.

KEDA's CRDs come from tests/operator/crds/keda/ (written from its published
schema), so the apiserver validates and prunes our ScaledObject as a cluster
running KEDA would; no KEDA controller runs here.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from jobqueue import db
from jobqueue.db import jobs
from jobqueue.models import NewJob
from tests import factories
from tests.operator.harness import (
    Cluster,
    Running,
    database_namespace,
    deployment,
    eventually,
    external_metric,
    jobqueue,
    raw,
    unique,
    until_ready,
)

pytestmark = pytest.mark.timeout(120)
EXTRA_CRDS = [Path(__file__).parent / "crds" / "keda"]


@pytest.fixture(scope="module")
def ns(cluster: Cluster, running: Running) -> str:
    return database_namespace(cluster, running, "jq-modes")


def keda(cluster: Cluster, kind: str, name: str, ns: str) -> dict[str, Any] | None:
    try:
        found = cluster.custom.get_namespaced_custom_object(
            "keda.sh", "v1alpha1", ns, kind.lower() + "s", name
        )
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return found  # type: ignore[no-any-return]


def hpa(cluster: Cluster, name: str, ns: str) -> dict[str, Any] | None:
    try:
        return raw(cluster, cluster.autoscaling.read_namespaced_horizontal_pod_autoscaler(name, ns))
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


async def test_hpa_mode_scales_down_slowly_and_can_watch_the_oldest_job(
    running: Running, cluster: Cluster, ns: str
) -> None:
    name = unique()
    cluster.create(jobqueue(name, ns, minReplicas=1, maxReplicas=5))
    await until_ready(cluster, name, ns)
    found = hpa(cluster, f"{name}-worker", ns)
    assert found is not None
    assert found["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert [m["external"]["metric"]["name"] for m in found["spec"]["metrics"]] == [
        "jobqueue_queue_depth"
    ]

    autoscaling = {"scaleDownStabilizationSeconds": 20, "targetOldestAgeSeconds": 90}
    cluster.patch("JobQueue", name, {"spec": {"autoscaling": autoscaling}}, ns)

    def updated() -> dict[str, Any] | None:
        h = hpa(cluster, f"{name}-worker", ns)
        return h if h and len(h["spec"]["metrics"]) == 2 else None

    h = await eventually(updated, what="HPA with two metrics")
    assert h["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 20
    age = h["spec"]["metrics"][1]["external"]
    assert age["metric"] == {
        "name": "jobqueue_oldest_ready_age_seconds",
        "selector": {"matchLabels": {"queue": name}},
    }
    assert age["target"] == {"type": "Value", "value": "90"}


async def test_keda_mode_hands_scaling_to_a_scaled_object_that_counts_like_our_metric(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool
) -> None:
    name = unique()
    spec = {"minReplicas": 0, "maxReplicas": 8, "autoscaling": {"mode": "keda"}}
    cluster.create(jobqueue(name, ns, **spec))
    await until_ready(cluster, name, ns)
    scaled = keda(cluster, "ScaledObject", f"{name}-worker", ns)
    auth = keda(cluster, "TriggerAuthentication", f"{name}-worker", ns)
    assert scaled is not None and auth is not None
    assert hpa(cluster, f"{name}-worker", ns) is None  # KEDA makes its own; none of ours
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (0, 8)
    assert scaled["spec"]["scaleTargetRef"]["name"] == f"{name}-worker"
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    assert trigger["authenticationRef"] == {"name": f"{name}-worker"}
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "connection", "name": "jobqueue-database", "key": "url"}
    ]

    # The query KEDA would run answers what our own metric serves.
    owner = await factories.tenant(pool)
    for n in range(4):
        await jobs.submit(pool, tenant_id=owner.id, job=NewJob(type="t", data={"n": n}, queue=name))
    async with pool.acquire() as conn:
        counted = await conn.fetchval(trigger["metadata"]["query"])
    selector = urllib.parse.quote(f"queue={name}")
    code, values = await asyncio.to_thread(
        external_metric, running, f"/namespaces/{ns}/jobqueue_queue_depth?labelSelector={selector}"
    )
    assert code == 200
    assert counted == int(values["items"][0]["value"]) == 4

    # Worker replicas start at minReplicas and are then KEDA's to set.
    assert deployment(cluster, f"{name}-worker", ns)["spec"]["replicas"] == 0


async def test_switching_modes_removes_the_old_modes_children(
    running: Running, cluster: Cluster, ns: str
) -> None:
    name = unique()
    worker = f"{name}-worker"
    cluster.create(jobqueue(name, ns, minReplicas=1, maxReplicas=3, autoscaling={"mode": "keda"}))
    await until_ready(cluster, name, ns)
    assert keda(cluster, "ScaledObject", worker, ns) is not None

    cluster.patch("JobQueue", name, {"spec": {"autoscaling": {"mode": "hpa"}}}, ns)
    await eventually(
        lambda: hpa(cluster, worker, ns) is not None
        and keda(cluster, "ScaledObject", worker, ns) is None
        and keda(cluster, "TriggerAuthentication", worker, ns) is None,
        what="HPA instead of the ScaledObject",
    )

    cluster.patch("JobQueue", name, {"spec": {"autoscaling": {"mode": "none"}}}, ns)
    await eventually(lambda: hpa(cluster, worker, ns) is None, what="HPA removed")
    assert deployment(cluster, worker, ns)["spec"]["replicas"] == 1
    await eventually(
        lambda: cluster.get("JobQueue", name, ns)["status"].get("autoscaled") is False,
        what="status says not autoscaled",
    )


def test_scale_from_zero_is_refused_unless_keda_does_it(cluster: Cluster, ns: str) -> None:
    with pytest.raises(ApiException) as refused:
        cluster.create(jobqueue(unique(), ns, minReplicas=0, maxReplicas=3))
    assert refused.value.status == 422
    assert "cannot scale from zero" in str(refused.value.body)
    with pytest.raises(ApiException) as bad_mode:
        cluster.create(jobqueue(unique(), ns, autoscaling={"mode": "sometimes"}))
    assert bad_mode.value.status == 422
