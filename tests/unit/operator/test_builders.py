"""Pure builders: spec in, manifests out."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from jobqueue.models import TenantQuotas
from jobqueue_operator import autoscaler_builders, builders, models, tenant_builders

OWNER = builders.Owner(kind="JobQueue", name="emails", uid="u-1", namespace="team-a")


def spec(**kw: Any) -> models.JobQueueSpec:
    kw.setdefault("image", "img:1")
    return models.JobQueueSpec.model_validate(kw)


def env(manifest: dict[str, Any]) -> dict[str, Any]:
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_every_child_has_explicit_labels_and_a_controller_owner() -> None:
    children = builders.jobqueue_children(OWNER, spec(maxReplicas=3), worker_replicas=1)
    kinds = [c["kind"] for c in children]
    assert kinds == [
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Lease",
        "Deployment",
        "Deployment",
        "HorizontalPodAutoscaler",
    ]
    for child in children:
        meta = child["metadata"]
        assert meta["namespace"] == "team-a"
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "jobqueue.dev/v1alpha1",
                "kind": "JobQueue",
                "name": "emails",
                "uid": "u-1",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        assert set(meta["labels"]) == {
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/component",
            "app.kubernetes.io/managed-by",
        }
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "jobqueue-operator"


def test_worker_deployment_carries_the_queue_settings() -> None:
    s = spec(
        queue="mail",
        handlers=["app.tasks"],
        concurrency=4,
        leaseSeconds=20,
        terminationGracePeriodSeconds=10,
        imagePullPolicy="Always",
        maxAttempts=3,
    )
    dep = builders.worker_deployment(OWNER, s, replicas=2)
    assert dep["metadata"]["name"] == "emails-worker"
    assert dep["spec"]["replicas"] == 2
    assert dep["spec"]["selector"]["matchLabels"] == builders.selector("emails", "worker")
    pod = dep["spec"]["template"]
    assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    assert pod["spec"]["terminationGracePeriodSeconds"] == 10
    container = pod["spec"]["containers"][0]
    assert container["command"] == ["jobqueue", "worker"]
    assert container["imagePullPolicy"] == "Always"
    assert "resources" not in container
    e = env(dep)
    assert e["JOBQUEUE_WORKER_QUEUE"] == "mail"
    assert e["JOBQUEUE_WORKER_HANDLERS"] == "app.tasks"
    assert e["JOBQUEUE_WORKER_HEARTBEAT_SECONDS"] == "6.667"  # a third of the lease
    assert e["JOBQUEUE_WORKER_GRACE_SECONDS"] == "8"  # leaves time to release leases
    assert e["DATABASE_URL"] == {"secretKeyRef": {"name": "jobqueue-database", "key": "url"}}
    # maxAttempts lives in the queue's row (the reconciler writes it), not in worker env.
    assert not any("MAX_ATTEMPTS" in name for name in e)


def test_replicas_none_leaves_the_field_out() -> None:
    dep = builders.worker_deployment(OWNER, spec(), replicas=None)
    assert "replicas" not in dep["spec"]


@pytest.mark.parametrize(("grace", "expected"), [(30, 25.0), (5, 4.0), (1, 0.8), (600, 595.0)])
def test_worker_grace_is_the_pod_grace_minus_a_margin(grace: int, expected: float) -> None:
    assert builders.grace_seconds(grace) == pytest.approx(expected)


def test_reaper_runs_kubernetes_leader_election_on_its_own_lease() -> None:
    dep = builders.reaper_deployment(OWNER, spec(reaperReplicas=3))
    assert dep["spec"]["replicas"] == 3
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "emails-reaper"
    assert pod["containers"][0]["command"] == ["jobqueue", "reaper", "--leader-election=kubernetes"]
    assert env(dep)["JOBQUEUE_REAPER_LEASE_NAME"] == "emails-reaper"
    role = builders.reaper_role(OWNER)
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["emails-reaper"],
            "verbs": ["get", "update", "patch"],
        }
    ]
    lease = builders.reaper_lease(OWNER)
    assert "spec" not in lease  # the leader owns the spec


def test_autoscaler_only_when_max_exceeds_min() -> None:
    assert "HorizontalPodAutoscaler" not in [
        c["kind"] for c in builders.jobqueue_children(OWNER, spec(), worker_replicas=1)
    ]
    hpa = autoscaler_builders.worker_autoscaler(
        spec(minReplicas=2, maxReplicas=9, autoscaling={"targetQueueDepthPerReplica": 50}),
        meta=builders.meta(OWNER, "emails-worker", builders.WORKER),
        worker="emails-worker",
        queue="emails",
    )
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 9
    target = hpa["spec"]["metrics"][0]["external"]["target"]
    assert target == {"type": "AverageValue", "averageValue": "50"}
    assert builders.targets(hpa, "emails-worker")
    assert not builders.targets(hpa, "other-worker")


def _live(replicas: int, managers: list[tuple[str, str, bool]]) -> dict[str, Any]:
    """A live Deployment whose managedFields say who set what."""
    fields = []
    for manager, operation, has_replicas in managers:
        spec_fields: dict[str, Any] = {"f:template": {}}
        if has_replicas:
            spec_fields["f:replicas"] = {}
        fields.append(
            {"manager": manager, "operation": operation, "fieldsV1": {"f:spec": spec_fields}}
        )
    return {"metadata": {"managedFields": fields}, "spec": {"replicas": replicas}}


def test_replicas_without_autoscaler_are_min_replicas() -> None:
    edited = _live(7, [("kubectl-edit", "Update", True)])
    s = spec(minReplicas=2, maxReplicas=2)
    assert builders.worker_replicas(s, autoscaled=False, live=edited) == 2
    assert builders.worker_replicas(s, autoscaled=False, live=None) == 2


def test_replicas_under_an_autoscaler() -> None:
    s = spec(minReplicas=2, maxReplicas=5)
    # First creation: start at the minimum.
    assert builders.worker_replicas(s, autoscaled=True, live=None) == 2
    # Still ours: re-apply what is live so dropping the field does not reset it to 1.
    ours = _live(4, [("jobqueue-operator", "Apply", True)])
    assert builders.worker_replicas(s, autoscaled=True, live=ours) == 4
    # The autoscaler changed it: the field is its own now, leave it out.
    theirs = _live(
        4, [("jobqueue-operator", "Apply", False), ("kube-controller-manager", "Update", True)]
    )
    assert builders.worker_replicas(s, autoscaled=True, live=theirs) is None


def test_tenant_quotas_map_spec_to_the_row() -> None:
    t = models.TenantSpec.model_validate(
        {
            "enabled": False,
            "weight": 5,
            "quotas": {
                "maxConcurrentJobs": 3,
                "maxQueuedJobs": 30,
                "rateLimit": {"requestsPerMinute": 60, "burst": 6},
            },
        }
    )
    assert tenant_builders.tenant_quotas(t) == TenantQuotas(
        enabled=False, max_concurrent=3, rate_per_minute=60, rate_burst=6, weight=5, max_queued=30
    )
    assert tenant_builders.tenant_quotas(models.TenantSpec()) == TenantQuotas()


def test_api_key_secret_round_trips_its_key() -> None:
    tenant = builders.Owner(kind="Tenant", name="acme", uid="u-2")
    secret = tenant_builders.api_key_secret(
        tenant, namespace="ops", key_name="api-key", api_key="jq_x"
    )
    assert secret["metadata"]["name"] == "jobqueue-tenant-acme"
    assert secret["metadata"]["namespace"] == "ops"
    assert base64.b64decode(secret["data"]["api-key"]) == b"jq_x"
    assert builders.secret_value(secret, "api-key") == "jq_x"
    assert builders.secret_value(secret, "missing") is None
    assert builders.secret_value({"stringData": {"k": "v"}}, "k") == "v"
    assert builders.secret_value({"data": {"k": "%%%"}}, "k") is None


@pytest.mark.parametrize(
    ("autoscaling", "bounds", "last_kinds"),
    [
        ({}, (1, 3), ["Deployment", "HorizontalPodAutoscaler"]),
        ({"mode": "keda"}, (0, 3), ["Deployment", "TriggerAuthentication", "ScaledObject"]),
        ({"mode": "none"}, (1, 3), ["Deployment", "Deployment"]),
        ({}, (2, 2), ["Deployment", "Deployment"]),  # nothing to scale between
    ],
)
def test_the_autoscaling_mode_decides_the_scaler_children(
    autoscaling: dict[str, Any], bounds: tuple[int, int], last_kinds: list[str]
) -> None:
    s = spec(minReplicas=bounds[0], maxReplicas=bounds[1], autoscaling=autoscaling)
    children = builders.jobqueue_children(OWNER, s, worker_replicas=1, keda_query="SELECT 1")
    assert [c["kind"] for c in children][-len(last_kinds) :] == last_kinds


def test_keda_mode_needs_its_query_and_scale_from_zero_needs_keda() -> None:
    with pytest.raises(ValueError, match="query"):
        builders.jobqueue_children(OWNER, spec(autoscaling={"mode": "keda"}, maxReplicas=2),
                                   worker_replicas=1)
    assert models.jobqueue_spec_problems(spec(minReplicas=0, maxReplicas=2))
    assert not models.jobqueue_spec_problems(
        spec(minReplicas=0, maxReplicas=2, autoscaling={"mode": "keda"})
    )


def test_the_autoscaler_query_inlines_the_queue_as_a_quoted_literal() -> None:
    from jobqueue.db import stats

    query = stats.autoscaler_query("it's")
    assert query.endswith("AND queue = 'it''s'")
    assert "--" not in query and "$1" not in query
