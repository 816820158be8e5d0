"""The operator's settings: JOBQUEUE_OPERATOR_* environment variables, and
KUBECONFIG.

The database URL comes from `jobqueue.settings.RuntimeSettings().database`
(DATABASE_URL or JOBQUEUE_DATABASE_URL), like every other component.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

FIELD_MANAGER = "jobqueue-operator"


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_OPERATOR_", populate_by_name=True)

    namespace: str = Field(
        "jobqueue-system",
        validation_alias=AliasChoices("JOBQUEUE_OPERATOR_NAMESPACE", "POD_NAMESPACE"),
        description="where tenant API-key Secrets live; the chart passes the pod's namespace",
    )
    # Queue depth and replicas in `kubectl get` are this stale at most; each
    # tick is one SQL query and a few no-op server-side applies per object.
    status_interval_seconds: float = Field(15.0, gt=0)
    # A change handler that could not finish (database down, Secret missing)
    # runs again after this long; kopf keeps retrying, the pod never crashes.
    retry_seconds: float = Field(10.0, gt=0)
    # A JobQueue being deleted waits this long at most for its database to
    # answer (its schedules are removed there); then it goes, with a warning.
    cleanup_timeout_seconds: float = Field(300.0, gt=0)
    # Every database call gives up after this, so a black-holed connection
    # turns into DatabaseUnavailable instead of a hung handler.
    db_timeout_seconds: float = Field(5.0, gt=0)
    # Each JobQueue's database gets a small pool of its own.
    db_pool_max: int = Field(2, ge=1)
    kube_timeout_seconds: float = Field(30.0, gt=0)
    # kopf's watch requests end after this so a silently dropped connection
    # is noticed; tests set it low.
    watch_server_timeout_seconds: int = Field(300, ge=1)
    # external.metrics.k8s.io for the worker HPAs; off unless a port is set.
    # The chart sets 6443 with a certificate the APIService trusts; without
    # cert and key it serves plain HTTP (tests, local runs).
    metrics_port: int | None = Field(None, ge=1, le=65535)
    metrics_cert_file: str | None = None
    metrics_key_file: str | None = None
    # Only the aggregator (front-proxy certificate) on behalf of a user the
    # apiserver authorizes may read queue sizes. Off only for tests and
    # local runs over plain HTTP.
    metrics_authenticate: bool = True


class KubeconfigSettings(BaseSettings):
    """Where the Kubernetes credentials are outside a pod; read at each login,
    since the official client's own default is frozen when it is imported."""

    model_config = SettingsConfigDict(populate_by_name=True)

    # Unset: ~/.kube/config (kopf's order, after the in-cluster account).
    kubeconfig: str | None = Field(None, validation_alias="KUBECONFIG")
