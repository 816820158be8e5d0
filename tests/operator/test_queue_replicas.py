"""The operator reports each JobQueue's worker replicas to the database (table
queue_replicas, which the dashboard shows), on reconcile and on its status
timer, against a real kube-apiserver and a real PostgreSQL.

No kubelet or controllers run here: the Deployment's status is written by
the test, as the deployment controller would."""

from __future__ import annotations

import pytest
from kubernetes import client

from jobqueue import db
from jobqueue.db import dashboard
from tests.operator.harness import (
    Cluster,
    Running,
    database_namespace,
    eventually,
    jobqueue,
    unique,
    until_ready,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def ns(cluster: Cluster, running: Running) -> str:
    return database_namespace(cluster, running, "jq-replicas")


def _pods(cluster: Cluster, name: str, ns: str, replicas: int, ready: int) -> None:
    """What the deployment controller would write once pods run."""
    cluster.apps.patch_namespaced_deployment_status(
        f"{name}-worker", ns, {"status": {"replicas": replicas, "readyReplicas": ready}})


async def _reported(pool: db.Pool, queue: str, want: tuple[int, int, int]) -> None:
    async def probe() -> tuple[int, int, int] | None:
        r = (await dashboard.replicas(pool)).get(queue)
        got = (r.replicas, r.ready_replicas, r.max_replicas) if r else None
        return got if got == want else None

    await eventually(probe, what=f"queue_replicas of {queue} = {want}")


async def test_an_autoscaled_queue_reports_its_pods_and_the_autoscalers_maximum(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool
) -> None:
    name = unique()
    cluster.create(jobqueue(name, ns, minReplicas=2, maxReplicas=6))
    await until_ready(cluster, name, ns)
    await _reported(pool, name, (0, 0, 6))  # no pods yet
    _pods(cluster, name, ns, 3, 2)
    await _reported(pool, name, (3, 2, 6))  # the status timer, no watch event
    cluster.patch("JobQueue", name, {"spec": {"maxReplicas": 8}}, ns)
    await _reported(pool, name, (3, 2, 8))


async def test_a_fixed_queue_reports_its_count_and_a_foreign_hpa_its_own_maximum(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool
) -> None:
    name, queue = unique(), unique("mail")
    cluster.create(jobqueue(name, ns, queue=queue, minReplicas=3, maxReplicas=3))
    await until_ready(cluster, name, ns)
    _pods(cluster, name, ns, 3, 3)
    await _reported(pool, queue, (3, 3, 3))
    # Somebody else's autoscaler on the workers: its maximum is the one.
    cluster.autoscaling.create_namespaced_horizontal_pod_autoscaler(
        ns,
        client.V2HorizontalPodAutoscaler(
            metadata=client.V1ObjectMeta(name=f"{name}-theirs"),
            spec=client.V2HorizontalPodAutoscalerSpec(
                scale_target_ref=client.V2CrossVersionObjectReference(
                    api_version="apps/v1", kind="Deployment", name=f"{name}-worker"),
                min_replicas=1, max_replicas=12),
        ),
    )
    await _reported(pool, queue, (3, 3, 12))
    assert name not in await dashboard.replicas(pool)  # reported under its queue's name
