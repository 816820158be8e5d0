"""Pure helpers around the reconcilers: spec parsing, API paths, redaction."""

from __future__ import annotations

from jobqueue_operator import kube, models, queue_reconciler
from jobqueue_operator import status as st
from jobqueue_operator.databases import redact


def test_a_spec_the_schema_missed_becomes_an_invalid_spec_problem() -> None:
    # An object stored before a CEL rule existed, or under an older CRD.
    problem = queue_reconciler.parse({"image": "x", "minReplicas": 3, "maxReplicas": 1})
    assert problem == st.Problem(st.INVALID_SPEC, "minReplicas must not exceed maxReplicas")
    unknown = queue_reconciler.parse({"image": "x", "concurrency": "lots"})
    assert isinstance(unknown, st.Problem) and "concurrency" in unknown.message
    assert isinstance(queue_reconciler.parse({"image": "x"}), models.JobQueueSpec)


def test_api_paths() -> None:
    assert kube.path("v1", "Secret", "ops", "k") == "/api/v1/namespaces/ops/secrets/k"
    assert (
        kube.path("apps/v1", "Deployment", "ns", "w") == "/apis/apps/v1/namespaces/ns/deployments/w"
    )
    assert kube.path("jobqueue.dev/v1alpha1", "Tenant", None, "a") == (
        "/apis/jobqueue.dev/v1alpha1/tenants/a"
    )
    assert kube.path("autoscaling/v2", "HorizontalPodAutoscaler", "ns") == (
        "/apis/autoscaling/v2/namespaces/ns/horizontalpodautoscalers"
    )


def test_database_errors_never_show_the_url_or_password() -> None:
    dsn = "postgresql://app:s3cret@db.internal:5432/jobs"
    message = f"could not connect to {dsn} (password s3cret rejected)"
    shown = redact(message, dsn)
    assert "s3cret" not in shown and dsn not in shown
    assert "<database url>" in shown
