"""Pure builders of a JobQueue's autoscaler children: our HPA, or KEDA's objects.

Each takes the worker Deployment's name, the queue and the metadata its siblings get
(`builders.meta`), so this module needs nothing from `builders`.

`spec.autoscaling.mode` picks one (docs/kubernetes.md): `hpa` scales on the
operator's external metrics, `keda` hands the same count to a KEDA the
cluster already runs, `none` builds nothing.
"""

from __future__ import annotations

from typing import Any

from jobqueue_operator import models

Manifest = dict[str, Any]

# The external metrics the HPA scales on; the operator's metrics server (or
# any adapter that knows queue depth) serves them per queue.
DEPTH_METRIC = "jobqueue_queue_depth"
# Seconds the oldest ready job of the queue has waited (the optional second metric).
AGE_METRIC = "jobqueue_oldest_ready_age_seconds"
KEDA_API = "keda.sh/v1alpha1"


def _external(metric: str, queue: str, target: dict[str, str]) -> Manifest:
    return {
        "type": "External",
        "external": {
            "metric": {"name": metric, "selector": {"matchLabels": {"queue": queue}}},
            "target": target,
        },
    }


def _deployment_ref(worker: str) -> Manifest:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": worker}


def _behavior(spec: models.JobQueueSpec) -> Manifest:
    return {
        "scaleDown": {
            "stabilizationWindowSeconds": spec.autoscaling.scale_down_stabilization_seconds
        }
    }


def worker_autoscaler(
    spec: models.JobQueueSpec, *, meta: Manifest, worker: str, queue: str
) -> Manifest:
    """An HPA between min and max replicas on the queue's depth per worker pod.

    With `targetOldestAgeSeconds` a second metric scales up while jobs wait
    too long even if the depth looks small (slow jobs); the HPA takes the
    larger of the two recommendations.
    """
    auto = spec.autoscaling
    metrics = [
        _external(
            DEPTH_METRIC,
            queue,
            {"type": "AverageValue", "averageValue": str(auto.target_queue_depth_per_replica)},
        )
    ]
    if auto.target_oldest_age_seconds is not None:
        target = {"type": "Value", "value": str(auto.target_oldest_age_seconds)}
        metrics.append(_external(AGE_METRIC, queue, target))
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": meta,
        "spec": {
            "scaleTargetRef": _deployment_ref(worker),
            "minReplicas": spec.min_replicas,
            "maxReplicas": spec.max_replicas,
            "metrics": metrics,
            "behavior": _behavior(spec),
        },
    }


def keda_auth(spec: models.JobQueueSpec, *, meta: Manifest) -> Manifest:
    """KEDA reads the queue's database URL from the JobQueue's own Secret."""
    ref = spec.database_secret_ref
    return {
        "apiVersion": KEDA_API,
        "kind": "TriggerAuthentication",
        "metadata": meta,
        "spec": {
            "secretTargetRef": [{"parameter": "connection", "name": ref.name, "key": ref.key}]
        },
    }


def keda_scaled_object(
    spec: models.JobQueueSpec, *, meta: Manifest, worker: str, query: str
) -> Manifest:
    """A KEDA ScaledObject with the postgresql trigger; `query` counts the unfinished
    jobs of the queue, the same number our own external metric serves."""
    auto = spec.autoscaling
    return {
        "apiVersion": KEDA_API,
        "kind": "ScaledObject",
        "metadata": meta,
        "spec": {
            "scaleTargetRef": _deployment_ref(worker),
            "minReplicaCount": spec.min_replicas,
            "maxReplicaCount": spec.max_replicas,
            "pollingInterval": auto.polling_interval_seconds,
            # Scale to zero only after the queue has been empty this long.
            "cooldownPeriod": auto.scale_down_stabilization_seconds,
            "advanced": {"horizontalPodAutoscalerConfig": {"behavior": _behavior(spec)}},
            "triggers": [
                {
                    "type": "postgresql",
                    "metadata": {
                        "query": query,
                        "targetQueryValue": str(auto.target_queue_depth_per_replica),
                        "activationTargetQueryValue": "0",
                    },
                    "authenticationRef": {"name": worker},
                }
            ],
        },
    }


def autoscalers(
    spec: models.JobQueueSpec,
    *,
    meta: Manifest,
    worker: str,
    queue: str,
    keda_query: str | None,
) -> list[Manifest]:
    """What scales the workers in this spec's mode; `keda_query` is what KEDA runs."""
    if spec.uses_hpa:
        return [worker_autoscaler(spec, meta=meta, worker=worker, queue=queue)]
    if spec.uses_keda:
        if keda_query is None:
            raise ValueError("keda mode needs the query KEDA runs")
        return [
            keda_auth(spec, meta=meta),
            keda_scaled_object(spec, meta=meta, worker=worker, query=keda_query),
        ]
    return []
