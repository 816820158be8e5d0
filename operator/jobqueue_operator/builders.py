"""Children of a JobQueue or Tenant as manifests (pure: spec in, dicts out).

Every child carries the same explicit labels (never a copy of the parent's,
which may hold anything) and a controller owner reference, so the garbage
collector removes it with its parent. The handlers server-side apply these
dicts; unit tests call the builders directly.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from jobqueue_operator import autoscaler_builders, models
from jobqueue_operator.settings import FIELD_MANAGER

Manifest = dict[str, Any]

APP = "jobqueue"
WORKER, REAPER = "worker", "reaper"
METRICS_PORT = 9100


@dataclass(frozen=True, slots=True)
class Owner:
    """The parent resource, as much of it as an owner reference needs."""

    kind: str
    name: str
    uid: str
    namespace: str | None = None
    api_version: str = models.API_VERSION

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def selector(instance: str, component: str) -> dict[str, str]:
    """The labels a Deployment selects its pods by (immutable once created)."""
    return {
        "app.kubernetes.io/name": APP,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
    }


def labels(instance: str, component: str) -> dict[str, str]:
    return {**selector(instance, component), "app.kubernetes.io/managed-by": FIELD_MANAGER}


def meta(owner: Owner, name: str, component: str, namespace: str | None = None) -> Manifest:
    return {
        "name": name,
        "namespace": namespace or owner.namespace,
        "labels": labels(owner.name, component),
        "ownerReferences": [owner.reference()],
    }


def worker_name(owner: Owner) -> str:
    return f"{owner.name}-worker"


def reaper_name(owner: Owner) -> str:
    """Names the reaper's Deployment, ServiceAccount, Role, RoleBinding and Lease."""
    return f"{owner.name}-reaper"


def _number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def _database_env(spec: models.JobQueueSpec) -> list[Manifest]:
    ref = spec.database_secret_ref
    return [
        {
            "name": "DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
        },
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
    ]


def grace_seconds(termination_grace_period: int) -> float:
    """Time in-flight jobs get after SIGTERM: the pod's grace minus a margin to release leases."""
    return termination_grace_period - min(5.0, termination_grace_period * 0.2)


def _container(
    spec: models.JobQueueSpec, name: str, command: list[str], env: list[Manifest]
) -> Manifest:
    container: Manifest = {
        "name": name,
        "image": spec.image,
        "command": command,
        "env": env,
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    if spec.image_pull_policy:
        container["imagePullPolicy"] = spec.image_pull_policy
    return container


def _deployment(
    owner: Owner,
    name: str,
    component: str,
    replicas: int | None,
    pod_spec: Manifest,
) -> Manifest:
    deployment_spec: Manifest = {
        "selector": {"matchLabels": selector(owner.name, component)},
        "template": {
            "metadata": {"labels": labels(owner.name, component)},
            "spec": {
                "enableServiceLinks": False,
                "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                **pod_spec,
            },
        },
    }
    if replicas is not None:
        deployment_spec = {"replicas": replicas, **deployment_spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(owner, name, component),
        "spec": deployment_spec,
    }


def worker_deployment(owner: Owner, spec: models.JobQueueSpec, *, replicas: int | None) -> Manifest:
    """`jobqueue worker` pods; `replicas=None` leaves the count to an autoscaler."""
    env = [
        *_database_env(spec),
        {"name": "JOBQUEUE_WORKER_QUEUE", "value": spec.queue_name(owner.name)},
        {"name": "JOBQUEUE_WORKER_CONCURRENCY", "value": str(spec.concurrency)},
        {"name": "JOBQUEUE_WORKER_HANDLERS", "value": ",".join(spec.handlers)},
        {"name": "JOBQUEUE_WORKER_LEASE_SECONDS", "value": str(spec.lease_seconds)},
        # A third of the lease: two heartbeats may fail before the lease expires.
        {"name": "JOBQUEUE_WORKER_HEARTBEAT_SECONDS", "value": _number(spec.lease_seconds / 3)},
        {
            "name": "JOBQUEUE_WORKER_GRACE_SECONDS",
            "value": _number(grace_seconds(spec.termination_grace_period_seconds)),
        },
        {"name": "JOBQUEUE_WORKER_METRICS_PORT", "value": str(METRICS_PORT)},
    ]
    container = _container(spec, WORKER, ["jobqueue", "worker"], env)
    if spec.resources is not None:
        container["resources"] = spec.resources.model_dump(by_alias=True, exclude_none=True)
    return _deployment(
        owner,
        worker_name(owner),
        WORKER,
        replicas,
        {
            "terminationGracePeriodSeconds": spec.termination_grace_period_seconds,
            # Workers talk to Postgres only: no API token in their pods.
            "automountServiceAccountToken": False,
            "containers": [container],
        },
    )


def reaper_deployment(owner: Owner, spec: models.JobQueueSpec) -> Manifest:
    """`jobqueue reaper` pods electing one leader through the Lease `<name>-reaper`."""
    env = [
        *_database_env(spec),
        {"name": "JOBQUEUE_REAPER_LEADER_ELECTION", "value": "kubernetes"},
        {"name": "JOBQUEUE_REAPER_LEASE_NAME", "value": reaper_name(owner)},
        {
            "name": "JOBQUEUE_REAPER_LEASE_NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        },
        {"name": "JOBQUEUE_REAPER_METRICS_PORT", "value": str(METRICS_PORT)},
    ]
    container = _container(
        spec, REAPER, ["jobqueue", "reaper", "--leader-election=kubernetes"], env
    )
    container["resources"] = {"requests": {"cpu": "10m", "memory": "64Mi"}}
    return _deployment(
        owner,
        reaper_name(owner),
        REAPER,
        spec.reaper_replicas,
        {"serviceAccountName": reaper_name(owner), "containers": [container]},
    )


def reaper_service_account(owner: Owner) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": meta(owner, reaper_name(owner), REAPER),
    }


def reaper_lease(owner: Owner) -> Manifest:
    """Created empty by the operator, because RBAC cannot limit `create` to one name.

    Metadata only: the reaper owns spec (holder, renew time), so applying this
    never fights the leader.
    """
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta(owner, reaper_name(owner), REAPER),
    }


def reaper_role(owner: Owner) -> Manifest:
    """Exactly the one Lease: read it, and renew or take it over."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": meta(owner, reaper_name(owner), REAPER),
        "rules": [
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "resourceNames": [reaper_name(owner)],
                "verbs": ["get", "update", "patch"],
            }
        ],
    }


def reaper_role_binding(owner: Owner) -> Manifest:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": meta(owner, reaper_name(owner), REAPER),
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": reaper_name(owner),
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": reaper_name(owner), "namespace": owner.namespace}
        ],
    }


def jobqueue_children(
    owner: Owner,
    spec: models.JobQueueSpec,
    *,
    worker_replicas: int | None,
    keda_query: str | None = None,
) -> list[Manifest]:
    """In apply order: the reaper's identity and Lease before the pods that use them."""
    children = [
        reaper_service_account(owner),
        reaper_role(owner),
        reaper_role_binding(owner),
        reaper_lease(owner),
        worker_deployment(owner, spec, replicas=worker_replicas),
        reaper_deployment(owner, spec),
    ]
    worker = worker_name(owner)
    return children + autoscaler_builders.autoscalers(
        spec,
        meta=meta(owner, worker, WORKER),
        worker=worker,
        queue=spec.queue_name(owner.name),
        keda_query=keda_query,
    )


def targets(hpa: Manifest, deployment_name: str) -> bool:
    ref = hpa.get("spec", {}).get("scaleTargetRef", {})
    return bool(ref.get("kind") == "Deployment" and ref.get("name") == deployment_name)


def owns_replicas(live: Manifest) -> bool:
    """Whether our field manager still owns a live Deployment's spec.replicas."""
    for entry in live.get("metadata", {}).get("managedFields") or []:
        if entry.get("manager") != FIELD_MANAGER or entry.get("operation") != "Apply":
            continue
        if "f:replicas" in (entry.get("fieldsV1") or {}).get("f:spec", {}):
            return True
    return False


def worker_replicas(
    spec: models.JobQueueSpec, *, autoscaled: bool, live: Manifest | None
) -> int | None:
    """What to write into the worker Deployment's spec.replicas; None writes nothing.

    Without an autoscaler: minReplicas. With one (ours or anybody's HPA on
    this Deployment) the count is the autoscaler's. An applier that drops a
    field it alone owns deletes it (the count would fall back to 1), so while
    we still own it we re-apply the live value; the autoscaler's first change
    takes the field over and from then on we leave it out.
    """
    if not autoscaled:
        return spec.min_replicas
    if live is None:
        return spec.min_replicas
    if owns_replicas(live):
        current = live.get("spec", {}).get("replicas")
        return int(current) if current is not None else spec.min_replicas
    return None


def secret_value(secret: Manifest, key: str) -> str | None:
    raw = (secret.get("data") or {}).get(key)
    if raw is None:
        plain = (secret.get("stringData") or {}).get(key)
        return str(plain) if plain is not None else None
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
