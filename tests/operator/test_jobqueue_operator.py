"""JobQueue resources against a real kube-apiserver, the operator running in-process.

No kubelet or controllers run here, so Deployments never get pods: these
tests check what the operator writes (children, owner references, field
ownership, status) and how it reacts to drift and to its database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from jobqueue import db
from jobqueue.db import jobs, leases, queues
from jobqueue.embedded import free_port
from jobqueue.models import NewJob, WorkerId
from tests import factories
from tests.envtest import ControlPlane
from tests.operator.harness import (
    IMAGE,
    Cluster,
    Running,
    database_namespace,
    deployment,
    env_of,
    eventually,
    external_metric,
    jobqueue,
    raw,
    service_account_kubeconfig,
    unique,
    until_ready,
    until_reason,
)

pytestmark = pytest.mark.timeout(120)

LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
    "app.kubernetes.io/managed-by",
)


@pytest.fixture(scope="module")
def ns(cluster: Cluster, running: Running) -> str:
    """A namespace for JobQueues, with the default database Secret pointing at our database."""
    return database_namespace(cluster, running, "jq-queues")


async def test_a_jobqueue_gets_workers_a_reaper_and_exactly_the_rbac_it_needs(
    running: Running, cluster: Cluster, control_plane: ControlPlane, ns: str
) -> None:
    name = unique()
    created = cluster.create(
        jobqueue(
            name,
            ns,
            handlers=["myapp.tasks", "myapp.more"],
            concurrency=8,
            minReplicas=3,
            maxReplicas=3,
            leaseSeconds=45,
            terminationGracePeriodSeconds=60,
            maxAttempts=7,
            resources={"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": 1e9}},
        )
    )
    uid = created["metadata"]["uid"]
    control_plane.kubectl(
        "wait", "--for=condition=Ready", "--timeout=30s", f"jobqueue/{name}", "-n", ns
    )
    owner = {
        "apiVersion": "jobqueue.dev/v1alpha1",
        "kind": "JobQueue",
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }

    worker = deployment(cluster, f"{name}-worker", ns)
    assert worker["metadata"]["ownerReferences"] == [owner]
    assert worker["metadata"]["labels"] == {
        "app.kubernetes.io/name": "jobqueue",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/component": "worker",
        "app.kubernetes.io/managed-by": "jobqueue-operator",
    }  # the JobQueue's own `team` label is not copied
    assert worker["spec"]["replicas"] == 3
    pod = worker["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 60
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    assert (container["image"], container["command"]) == (IMAGE, ["jobqueue", "worker"])
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "256Mi"},
        "limits": {"memory": "1G"},
    }
    env = env_of(worker)
    assert env["DATABASE_URL"] == {"secretKeyRef": {"name": "jobqueue-database", "key": "url"}}
    assert env["JOBQUEUE_WORKER_QUEUE"] == name
    assert env["JOBQUEUE_WORKER_CONCURRENCY"] == "8"
    assert env["JOBQUEUE_WORKER_HANDLERS"] == "myapp.tasks,myapp.more"
    assert env["JOBQUEUE_WORKER_LEASE_SECONDS"] == "45"
    assert env["JOBQUEUE_WORKER_HEARTBEAT_SECONDS"] == "15"
    assert env["JOBQUEUE_WORKER_GRACE_SECONDS"] == "55"
    assert not any("MAX_ATTEMPTS" in e for e in env)  # in the queue's row instead
    managers = {(m["manager"], m["operation"]) for m in worker["metadata"]["managedFields"]}
    assert ("jobqueue-operator", "Apply") in managers

    reaper = deployment(cluster, f"{name}-reaper", ns)
    assert reaper["metadata"]["ownerReferences"] == [owner]
    assert reaper["spec"]["replicas"] == 2
    rpod = reaper["spec"]["template"]["spec"]
    assert rpod["serviceAccountName"] == f"{name}-reaper"
    assert rpod["containers"][0]["command"] == [
        "jobqueue",
        "reaper",
        "--leader-election=kubernetes",
    ]
    assert env_of(reaper)["JOBQUEUE_REAPER_LEASE_NAME"] == f"{name}-reaper"

    role = raw(cluster, cluster.rbac.read_namespaced_role(f"{name}-reaper", ns))
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [f"{name}-reaper"],
            "verbs": ["get", "update", "patch"],
        }
    ]
    binding = raw(cluster, cluster.rbac.read_namespaced_role_binding(f"{name}-reaper", ns))
    assert binding["roleRef"]["name"] == f"{name}-reaper"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{name}-reaper", "namespace": ns}
    ]
    for obj in (
        role,
        binding,
        raw(cluster, cluster.core.read_namespaced_service_account(f"{name}-reaper", ns)),
        raw(cluster, cluster.coord.read_namespaced_lease(f"{name}-reaper", ns)),
    ):
        assert obj["metadata"]["ownerReferences"] == [owner]
        assert {k: obj["metadata"]["labels"][k] for k in LABELS}["app.kubernetes.io/component"] == (
            "reaper"
        )

    status = cluster.get("JobQueue", name, ns)["status"]
    assert status["observedGeneration"] == 1
    assert (status["queue"], status["queueDepth"], status["runningJobs"]) == (name, 0, 0)
    assert status["replicas"] == 0  # no controller-manager: no pods on an envtest
    assert status["autoscaled"] is False


async def test_the_reaper_role_allows_its_lease_and_nothing_else(
    running: Running, cluster: Cluster, control_plane: ControlPlane, ns: str
) -> None:
    name = unique()
    cluster.create(jobqueue(name, ns))
    await until_ready(cluster, name, ns)
    sa = f"system:serviceaccount:{ns}:{name}-reaper"

    def can(verb: str, resource: str) -> bool:
        result = control_plane.kubectl(
            "auth", "can-i", verb, resource, "-n", ns, "--as", sa, check=False
        )
        return result.stdout.strip() == "yes"

    assert can("update", f"leases/{name}-reaper")
    assert can("get", f"leases/{name}-reaper")
    assert not can("update", "leases/someone-else")
    assert not can("list", "leases")
    assert not can("get", "secrets")


async def test_the_reaper_leads_with_only_the_rbac_the_operator_gave_it(
    running: Running, cluster: Cluster, control_plane: ControlPlane, ns: str, tmp_path: Path
) -> None:
    """The real `jobqueue reaper`, as its ServiceAccount, takes and releases its Lease."""
    name = unique()
    cluster.create(jobqueue(name, ns))
    await until_ready(cluster, name, ns)
    lease = f"{name}-reaper"
    kubeconfig = service_account_kubeconfig(control_plane, ns, lease, tmp_path / "kubeconfig")
    log = (tmp_path / "reaper.log").open("w")
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("jobqueue")), "reaper",
        "--leader-election", "kubernetes", "--kubeconfig", str(kubeconfig),
        "--lease-name", lease, "--lease-namespace", ns,
        "--lease-seconds", "5", "--interval-seconds", "0.2",
        env={**os.environ, "DATABASE_URL": running.dsn},
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:

        def holder() -> str | None:
            spec = cluster.coord.read_namespaced_lease(lease, ns).spec
            return spec.holder_identity if spec is not None else None

        await eventually(holder, timeout=30, what="the reaper holds its Lease")
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=20) == 0
        assert not holder()  # a clean stop hands the Lease back
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()
    assert "Forbidden" not in (tmp_path / "reaper.log").read_text()


async def test_editing_a_jobqueue_rolls_its_deployments(
    running: Running, cluster: Cluster, ns: str
) -> None:
    name = unique()
    cluster.create(jobqueue(name, ns))
    await until_ready(cluster, name, ns)
    before = deployment(cluster, f"{name}-worker", ns)

    cluster.patch(
        "JobQueue",
        name,
        {"spec": {"image": "registry.example/jobqueue:2.0", "concurrency": 32}},
        ns,
    )

    def image(dep: dict[str, Any]) -> str:
        return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])

    def rolled() -> dict[str, Any] | None:
        # One reconcile applies the worker, then the reaper: wait for both,
        # or a read between the two applies sees a half-rolled pair.
        dep = deployment(cluster, f"{name}-worker", ns)
        reaper = deployment(cluster, f"{name}-reaper", ns)
        ok = (
            image(dep).endswith(":2.0")
            and image(reaper).endswith(":2.0")
            and env_of(dep)["JOBQUEUE_WORKER_CONCURRENCY"] == "32"
        )
        return dep if ok else None

    after = await eventually(rolled, what="worker and reaper templates updated")
    assert after["metadata"]["generation"] > before["metadata"]["generation"]
    await eventually(
        lambda: cluster.get("JobQueue", name, ns)["status"]["observedGeneration"] == 2,
        what="observedGeneration 2",
    )


async def test_a_deleted_deployment_and_role_come_back(
    running: Running, cluster: Cluster, ns: str
) -> None:
    name = unique()
    cluster.create(jobqueue(name, ns))
    await until_ready(cluster, name, ns)
    old_uid = deployment(cluster, f"{name}-worker", ns)["metadata"]["uid"]

    cluster.apps.delete_namespaced_deployment(f"{name}-worker", ns)
    cluster.rbac.delete_namespaced_role(f"{name}-reaper", ns)

    back = await eventually(
        lambda: deployment(cluster, f"{name}-worker", ns), what="worker Deployment back"
    )
    assert back["metadata"]["uid"] != old_uid
    assert back["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    await eventually(
        lambda: cluster.rbac.read_namespaced_role(f"{name}-reaper", ns), what="Role back"
    )


async def test_an_edited_deployment_is_put_back(
    running: Running, cluster: Cluster, ns: str
) -> None:
    name = unique()
    cluster.create(jobqueue(name, ns, minReplicas=2, maxReplicas=2))
    await until_ready(cluster, name, ns)
    patch = {
        "spec": {
            "replicas": 7,
            "template": {"spec": {"containers": [{"name": "worker", "image": "evil:latest"}]}},
        }
    }
    cluster.apps.patch_namespaced_deployment(
        f"{name}-worker", ns, patch, field_manager="kubectl-edit"
    )

    def restored() -> bool:
        dep = deployment(cluster, f"{name}-worker", ns)
        image = dep["spec"]["template"]["spec"]["containers"][0]["image"]
        return image == IMAGE and dep["spec"]["replicas"] == 2

    await eventually(restored, what="image and replicas restored")


async def test_replicas_an_autoscaler_owns_are_never_written(
    running: Running, cluster: Cluster, ns: str
) -> None:
    name = unique()
    cluster.create(jobqueue(name, ns, minReplicas=2, maxReplicas=2))
    await until_ready(cluster, name, ns)
    # Somebody else's autoscaler (KEDA, a hand-made HPA) takes the Deployment over.
    cluster.autoscaling.create_namespaced_horizontal_pod_autoscaler(
        ns,
        client.V2HorizontalPodAutoscaler(
            metadata=client.V1ObjectMeta(name=f"{name}-keda"),
            spec=client.V2HorizontalPodAutoscalerSpec(
                scale_target_ref=client.V2CrossVersionObjectReference(
                    api_version="apps/v1", kind="Deployment", name=f"{name}-worker"
                ),
                min_replicas=1,
                max_replicas=10,
            ),
        ),
    )
    cluster.apps.patch_namespaced_deployment_scale(
        f"{name}-worker", ns, {"spec": {"replicas": 5}}, field_manager="kube-controller-manager"
    )
    cluster.patch("JobQueue", name, {"spec": {"concurrency": 3}}, ns)

    def applied() -> dict[str, Any] | None:
        dep = deployment(cluster, f"{name}-worker", ns)
        return dep if env_of(dep)["JOBQUEUE_WORKER_CONCURRENCY"] == "3" else None

    dep = await eventually(applied, what="new template applied")
    assert dep["spec"]["replicas"] == 5
    await asyncio.sleep(2.5)  # a few status ticks, each a full re-apply
    assert deployment(cluster, f"{name}-worker", ns)["spec"]["replicas"] == 5
    assert cluster.get("JobQueue", name, ns)["status"]["autoscaled"] is True


async def test_max_above_min_adds_an_autoscaler_and_removes_it_again(
    running: Running, cluster: Cluster, ns: str
) -> None:
    name = unique()
    cluster.create(jobqueue(name, ns, minReplicas=2, maxReplicas=6))
    await until_ready(cluster, name, ns)
    hpa = raw(
        cluster,
        cluster.autoscaling.read_namespaced_horizontal_pod_autoscaler(f"{name}-worker", ns),
    )
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"{name}-worker"
    metric = hpa["spec"]["metrics"][0]["external"]
    assert metric["metric"]["name"] == "jobqueue_queue_depth"
    assert metric["metric"]["selector"] == {"matchLabels": {"queue": name}}
    assert deployment(cluster, f"{name}-worker", ns)["spec"]["replicas"] == 2

    cluster.patch("JobQueue", name, {"spec": {"maxReplicas": 2}}, ns)

    def removed() -> bool:
        try:
            cluster.autoscaling.read_namespaced_horizontal_pod_autoscaler(f"{name}-worker", ns)
        except ApiException as exc:
            return exc.status == 404
        return False

    await eventually(removed, what="HPA removed")
    assert deployment(cluster, f"{name}-worker", ns)["spec"]["replicas"] == 2


async def test_max_attempts_becomes_the_queues_default_and_follows_edits(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool
) -> None:
    name, queue = unique(), unique("mail")
    cluster.create(jobqueue(name, ns, queue=queue, maxAttempts=3))
    await until_ready(cluster, name, ns)
    assert (await queues.get_defaults(pool, queue=queue)).default_max_attempts == 3
    owner = await factories.tenant(pool)

    async def submitted(**kw: Any) -> int:
        job = NewJob(type="echo", queue=queue, **kw)
        return (await jobs.submit(pool, tenant_id=owner.id, job=job)).job.max_attempts

    assert await submitted() == 3
    assert await submitted(max_attempts=9) == 9

    cluster.patch("JobQueue", name, {"spec": {"maxAttempts": 2}}, ns)

    async def updated() -> bool:
        return (await queues.get_defaults(pool, queue=queue)).default_max_attempts == 2

    await eventually(updated, what="default max_attempts 2")
    assert await submitted() == 2
    listed = await jobs.list_jobs(pool, tenant_id=owner.id, queue=queue)
    assert sorted(j.max_attempts for j in listed.jobs) == [2, 3, 9]  # queued jobs keep theirs

    # Left out of the spec: the CRD default, 5, is written.
    cluster.patch("JobQueue", name, {"spec": {"maxAttempts": None}}, ns)

    async def defaulted() -> bool:
        return (await queues.get_defaults(pool, queue=queue)).default_max_attempts == 5

    await eventually(defaulted, what="default max_attempts back to 5")


async def test_status_shows_depth_running_jobs_and_oldest_age(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool
) -> None:
    name = unique()
    cluster.create(jobqueue(name, ns))
    await until_ready(cluster, name, ns)
    owner = await factories.tenant(pool)
    for n in range(4):
        await jobs.submit(
            pool, tenant_id=owner.id, job=NewJob(type="echo", data={"n": n}, queue=name)
        )
    leased = await leases.lease(
        pool, queue=name, worker_id=WorkerId("w1"), limit=1, lease_seconds=60
    )
    assert len(leased) == 1
    await asyncio.sleep(1.1)  # so the oldest queued job is at least a second old

    def counted() -> dict[str, Any] | None:
        status = cluster.get("JobQueue", name, ns)["status"]
        ok = (status.get("queueDepth"), status.get("runningJobs")) == (3, 1)
        return status if ok and status.get("oldestJobAgeSeconds", 0) >= 1 else None

    await eventually(counted, what="depth 3, running 1 in status")


async def test_external_metrics_serve_the_depth_the_autoscaler_scales_on(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool
) -> None:
    name = unique()
    cluster.create(jobqueue(name, ns, minReplicas=1, maxReplicas=4))
    await until_ready(cluster, name, ns)
    owner = await factories.tenant(pool)
    for n in range(5):
        job = NewJob(type="echo", data={"n": n}, queue=name)
        await jobs.submit(pool, tenant_id=owner.id, job=job)
    await leases.lease(pool, queue=name, worker_id=WorkerId("w1"), limit=2, lease_seconds=60)

    code, discovery = await asyncio.to_thread(external_metric, running, "")
    assert code == 200
    assert [r["name"] for r in discovery["resources"]] == [
        "jobqueue_queue_depth",
        "jobqueue_oldest_ready_age_seconds",
    ]
    selector = urllib.parse.quote(f"queue={name}")
    path = f"/namespaces/{ns}/jobqueue_queue_depth?labelSelector={selector}"
    code, values = await asyncio.to_thread(external_metric, running, path)
    assert code == 200, values
    assert values["kind"] == "ExternalMetricValueList"
    assert [(i["value"], i["metricLabels"]) for i in values["items"]] == [("5", {"queue": name})]
    # The second metric: how long the oldest ready job has waited, in whole seconds.
    age_path = f"/namespaces/{ns}/jobqueue_oldest_ready_age_seconds?labelSelector={selector}"
    code, ages = await asyncio.to_thread(external_metric, running, age_path)
    assert code == 200, ages
    assert [i["metricName"] for i in ages["items"]] == ["jobqueue_oldest_ready_age_seconds"]
    assert 0 <= int(ages["items"][0]["value"]) < 60
    # Another namespace has no such queue: nothing, never someone else's numbers.
    other = f"/namespaces/default/jobqueue_queue_depth?labelSelector={selector}"
    assert (await asyncio.to_thread(external_metric, running, other))[1]["items"] == []
    bad = f"/namespaces/{ns}/jobqueue_queue_depth?labelSelector=queue!%3Dx"
    assert (await asyncio.to_thread(external_metric, running, bad))[0] == 400
    unknown = f"/namespaces/{ns}/cpu?labelSelector={selector}"
    assert (await asyncio.to_thread(external_metric, running, unknown))[0] == 404


async def test_database_problems_show_in_conditions_and_clear_on_their_own(
    running: Running, cluster: Cluster, ns: str, pool: db.Pool
) -> None:
    name = unique()
    secret = unique("db")
    cluster.create(jobqueue(name, ns, databaseSecretRef={"name": secret}, maxAttempts=4))
    cond = await until_reason(cluster, name, ns, "DatabaseSecretMissing")
    assert cond["status"] == "False" and secret in cond["message"]
    degraded = cluster.condition("JobQueue", name, "Degraded", ns)
    assert degraded is not None and degraded["status"] == "True"
    # The children do not wait for the database.
    assert deployment(cluster, f"{name}-worker", ns)["spec"]["replicas"] == 1

    dead = f"postgresql://nobody:hunter2@127.0.0.1:{free_port()}/nothing"
    cluster.secret(ns, secret, {"url": dead})
    cond = await until_reason(cluster, name, ns, "DatabaseUnavailable")
    assert "hunter2" not in cond["message"] and dead not in cond["message"]
    assert running.op.alive

    cluster.core.patch_namespaced_secret(secret, ns, {"stringData": {"url": running.dsn}})
    await until_ready(cluster, name, ns)
    # The defaults the dead database could not take were written on the retry.
    assert (await queues.get_defaults(pool, queue=name)).default_max_attempts == 4


async def test_a_spec_the_apiserver_cannot_run_is_reported(
    running: Running, cluster: Cluster, ns: str
) -> None:
    name = unique()
    # Valid for the CRD schema, refused by Deployment validation.
    cluster.create(jobqueue(name, ns, resources={"requests": {"cpu": 2}, "limits": {"cpu": 1}}))
    cond = await until_reason(cluster, name, ns, "ApplyFailed")
    assert cond["status"] == "False"
    assert "must be less than or equal to cpu limit" in cond["message"]


def test_the_apiserver_rejects_invalid_jobqueues(cluster: Cluster, ns: str) -> None:
    cases = {
        "minReplicas must not exceed maxReplicas": {"minReplicas": 3, "maxReplicas": 2},
        "greater than or equal to 1": {"concurrency": -1},
        "pauses the queue": {"minReplicas": 0, "maxReplicas": 4},
        "spec.image: Required value": {"image": None},
        "spec.handlers[0]": {"handlers": ["not a module"]},
        "spec.queue": {"queue": "Has Spaces"},
    }
    for message, spec in cases.items():
        obj = jobqueue(unique(), ns, **spec)
        obj["spec"] = {k: v for k, v in obj["spec"].items() if v is not None}
        with pytest.raises(ApiException) as rejected:
            cluster.create(obj)
        assert rejected.value.status == 422, spec
        assert message in str(rejected.value.body), (message, rejected.value.body)
    with pytest.raises(ApiException) as too_long:
        cluster.create(jobqueue("q" * 57, ns))
    assert too_long.value.status == 422
