"""Spec models of the Tenant and JobQueue resources (pure).

One definition serves twice: `crdgen` turns these models into the CRDs'
OpenAPI schemas (so the apiserver enforces defaults and bounds), and the
handlers parse `spec` with them (so a value the schema could not express is
still caught, and the code reads typed fields instead of dict lookups).

Field names are snake_case in Python and camelCase on the wire. Bounds
mirror the CHECK constraints of the database where one exists, so a spec
the apiserver accepts can always be written to the tenants table.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, WithJsonSchema
from pydantic.alias_generators import to_camel

from jobqueue import validation
from jobqueue.models import DEFAULT_MAX_ATTEMPTS, TenantQuotas
from jobqueue.settings import DEFAULT_CONCURRENCY

GROUP = "jobqueue.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# The tenants.id CHECK of the database: a tenant is named like a DNS label.
TENANT_NAME_PATTERN = validation.TENANT_PATTERN
# A tenant's quotas when its spec leaves them out: the tenants table's.
_QUOTAS = TenantQuotas()
# jobs.queue is 1..63 characters; keep it label-safe so it can be a selector value.
QUEUE_PATTERN = r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$"
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
MODULE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
# resource.Quantity as the apiserver parses it (the pattern controller-gen emits).
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]"
    r"|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

Quantity = Annotated[
    int | str,
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]


# A nested object whose fields all have defaults gets `default: {}` in the
# CRD, so the apiserver fills in its defaults even when it is left out.
_EMPTY: dict[str, JsonValue] = {"default": {}}


class _Model(BaseModel):
    """camelCase on the wire, snake_case in code; unknown fields are an error."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class SecretKeyRef(_Model):
    """A key of a Secret."""

    name: str = Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN)
    key: str = Field(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)


class ApiKeySecretRef(SecretKeyRef):
    """A Secret in the operator's namespace that holds the tenant's API key."""

    key: str = Field("api-key", min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)


class DatabaseSecretRef(SecretKeyRef):
    """A Secret in the JobQueue's namespace holding the database URL."""

    name: str = Field(
        "jobqueue-database", min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN
    )
    key: str = Field("url", min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)


class RateLimit(_Model):
    """Submissions per minute, enforced across all API replicas (GCRA in Postgres)."""

    requests_per_minute: int = Field(_QUOTAS.rate_per_minute, ge=1, le=10_000_000)
    burst: int = Field(_QUOTAS.rate_burst, ge=1, le=1_000_000)


class TenantQuotasSpec(_Model):
    """Limits the API and the workers read from the tenants table."""

    max_concurrent_jobs: int = Field(
        _QUOTAS.max_concurrent, ge=1, le=1_000_000,
        description="running jobs at once, over all workers",
    )
    max_queued_jobs: int = Field(
        _QUOTAS.max_queued, ge=1, le=2_147_483_647, description="unfinished jobs; more are refused"
    )
    rate_limit: RateLimit = Field(default_factory=RateLimit, json_schema_extra=_EMPTY)


class TenantSpec(_Model):
    """A tenant of the job queue; its name is the tenant id."""

    enabled: bool = Field(
        _QUOTAS.enabled, description="a disabled tenant can neither submit nor lease"
    )
    weight: int = Field(
        _QUOTAS.weight, ge=1, le=1000, description="fair share between tenants of a queue"
    )
    quotas: TenantQuotasSpec = Field(default_factory=TenantQuotasSpec, json_schema_extra=_EMPTY)
    api_key_secret_ref: ApiKeySecretRef | None = Field(
        None,
        description="use this Secret's key; when unset the operator creates "
        "jobqueue-tenant-<name> holding a generated key",
    )


class ResourceRequirements(_Model):
    """Container resources, as in a Pod spec."""

    requests: dict[str, Quantity] | None = None
    limits: dict[str, Quantity] | None = None


class Autoscaling(_Model):
    """How worker replicas follow the queue when maxReplicas > minReplicas.

    A cluster has one owner of external.metrics.k8s.io: `hpa` uses ours (the
    operator's metrics server), `keda` leaves scaling to a KEDA the cluster
    already runs, `none` keeps minReplicas workers.
    """

    mode: Literal["hpa", "keda", "none"] = Field(
        "hpa",
        description="hpa: an HPA on our external metric; keda: a KEDA ScaledObject "
        "(postgresql trigger, scale to zero allowed); none: fixed minReplicas",
    )
    target_queue_depth_per_replica: int = Field(
        100, ge=1, le=1_000_000, description="unfinished jobs (queued + running) per worker"
    )
    scale_down_stabilization_seconds: int = Field(
        300,
        ge=0,
        le=3600,
        description="scale down only to the highest replica count wanted this long; "
        "stops a draining queue from flapping workers",
    )
    target_oldest_age_seconds: int | None = Field(
        None,
        ge=1,
        le=86_400,
        description="hpa mode: also scale up while the oldest ready job has waited longer",
    )
    polling_interval_seconds: int = Field(
        15, ge=1, le=3600, description="keda mode: how often KEDA counts the queue"
    )


# Five whitespace-separated fields; the operator checks the rest (jobqueue.cron).
CRON_PATTERN = r"^\s*\S+(\s+\S+){4}\s*$"
ZONE_PATTERN = r"^[A-Za-z][A-Za-z0-9_+./-]*$"
JOB_TYPE_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,199}$"


class ScheduleSpec(_Model):
    """A cron schedule of one tenant, firing jobs into this queue (or `queue`).

    Synced to the queue's database on every reconcile; one removed from the
    list is deleted there. The reaper fires it (docs/design.md, invariant 13).
    """

    name: str = Field(min_length=1, max_length=63, pattern=TENANT_NAME_PATTERN,
                      description="unique per tenant")
    tenant: str = Field(min_length=1, max_length=63, pattern=TENANT_NAME_PATTERN,
                        description="the tenant that owns the jobs (a Tenant's name)")
    cron: str = Field(min_length=1, max_length=200, pattern=CRON_PATTERN,
                      description="five fields: minute hour day-of-month month day-of-week")
    timezone: str = Field("UTC", min_length=1, max_length=64, pattern=ZONE_PATTERN,
                          description="an IANA time zone; DST as Debian cron handles it")
    type: str = Field(min_length=1, max_length=200, pattern=JOB_TYPE_PATTERN,
                      description="the job type to fire")
    data: Annotated[
        dict[str, JsonValue],
        WithJsonSchema({"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                        "description": "the job's payload, a JSON object"}),
    ] = Field(default_factory=dict)
    queue: str | None = Field(None, min_length=1, max_length=63, pattern=QUEUE_PATTERN,
                              description="defaults to this JobQueue's queue")
    priority: Literal["low", "normal", "high", "critical"] = "normal"
    max_attempts: int | None = Field(None, ge=1, le=1000,
                                     description="defaults to the queue's maxAttempts")
    overlap: Literal["allow", "skip"] = Field(
        "allow", description="skip: no fire while the previous fire's job is unfinished")
    missed: Literal["skip", "run_once"] = Field(
        "skip", description="fire times missed during downtime: skip, or one job for all")


class LimitRateSpec(_Model):
    """Per key: count starts per periodSeconds, and burst more at once after a quiet time."""

    count: int = Field(ge=1, le=1_000_000)
    period_seconds: int = Field(ge=1, le=86_400)
    burst: int = Field(0, ge=0, le=1_000_000)


class LimitSpec(_Model):
    """An execution limit on this queue's jobs, held by every worker (design.md, invariant 14)."""

    name: str = Field(min_length=1, max_length=63, pattern=TENANT_NAME_PATTERN)
    per: Literal["queue", "tenant", "data"] = Field(
        "queue", description="one key for the queue, per tenant, or per value at `path`")
    path: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, min_length=1, max_length=16, description="keys into the job's data (per: data)")
    rate: LimitRateSpec | None = None
    max_concurrent: int | None = Field(None, ge=1, le=1_000_000,
                                       description="leased or running jobs of a key at once")


class JobQueueSpec(_Model):
    """Workers and a reaper for one queue."""

    queue: str | None = Field(
        None,
        min_length=1,
        max_length=63,
        pattern=QUEUE_PATTERN,
        description="queue name in the database; defaults to the JobQueue's name",
    )
    image: str = Field(min_length=1, max_length=1024, description="image with `jobqueue`")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    handlers: list[Annotated[str, Field(max_length=253, pattern=MODULE_PATTERN)]] = Field(
        default_factory=list, max_length=64, description="modules imported for @handler"
    )
    concurrency: int = Field(
        DEFAULT_CONCURRENCY, ge=1, le=10_000, description="jobs at once per worker pod"
    )
    min_replicas: int = Field(1, ge=0, le=1000)
    max_replicas: int = Field(1, ge=0, le=1000)
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, json_schema_extra=_EMPTY)
    resources: ResourceRequirements | None = None
    lease_seconds: int = Field(30, ge=3, le=3600, description="lease length; heartbeat every third")
    max_attempts: int = Field(
        DEFAULT_MAX_ATTEMPTS,
        ge=1,
        le=1000,
        description="attempts before the DLQ for jobs submitted without max_attempts "
        "(written to the queue's row in its database)",
    )
    termination_grace_period_seconds: int = Field(
        30, ge=1, le=3600, description="SIGTERM to SIGKILL; in-flight jobs get most of it"
    )
    database_secret_ref: DatabaseSecretRef = Field(
        default_factory=DatabaseSecretRef, json_schema_extra=_EMPTY
    )
    reaper_replicas: int = Field(2, ge=0, le=5, description="one leads, the others stand by")
    schedules: list[ScheduleSpec] = Field(
        default_factory=list, max_length=200,
        description="cron schedules the reaper fires; (tenant, name) unique",
        json_schema_extra={"x-kubernetes-list-type": "map",
                           "x-kubernetes-list-map-keys": ["tenant", "name"]},
    )
    limits: list[LimitSpec] = Field(
        default_factory=list, max_length=64, description="execution limits; name unique",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )

    def queue_name(self, resource_name: str) -> str:
        return self.queue or resource_name

    @property
    def autoscaled(self) -> bool:
        return self.autoscaling.mode != "none" and self.max_replicas > self.min_replicas

    @property
    def uses_hpa(self) -> bool:
        return self.autoscaled and self.autoscaling.mode == "hpa"

    @property
    def uses_keda(self) -> bool:
        return self.autoscaled and self.autoscaling.mode == "keda"


# Cross-field rules the apiserver checks (CEL), next to the models they guard.
# The handlers re-check them in `jobqueue_spec_problems`, so an object created before
# a rule existed still gets a clear condition instead of a broken Deployment.
TENANT_RULES: list[dict[str, str]] = [
    {
        "rule": f"self.metadata.name.matches('{TENANT_NAME_PATTERN}')",
        "message": "a Tenant's name is its tenant id: a DNS label "
        "(lowercase letters, digits, '-'; at most 63 characters)",
        "reason": "FieldValueInvalid",
    },
]
JOBQUEUE_RULES: list[dict[str, str]] = [
    {
        "rule": "size(self.metadata.name) <= 56",
        "message": "a JobQueue's name is part of its children's names and label values: "
        "at most 56 characters",
        "reason": "FieldValueInvalid",
    },
]
JOBQUEUE_SPEC_RULES: list[dict[str, str]] = [
    {
        "rule": "self.minReplicas <= self.maxReplicas",
        "message": "minReplicas must not exceed maxReplicas",
        "fieldPath": ".minReplicas",
    },
    {
        "rule": "self.minReplicas > 0 || self.maxReplicas == 0 || self.autoscaling.mode == 'keda'",
        "message": "minReplicas 0 pauses the queue and needs maxReplicas 0: "
        "a HorizontalPodAutoscaler cannot scale from zero (autoscaling.mode keda can)",
        "fieldPath": ".minReplicas",
    },
]


def jobqueue_spec_problems(spec: JobQueueSpec) -> list[str]:
    """The CEL rules above, in Python."""
    problems = []
    if spec.min_replicas > spec.max_replicas:
        problems.append("minReplicas must not exceed maxReplicas")
    elif spec.min_replicas == 0 and spec.max_replicas > 0 and spec.autoscaling.mode != "keda":
        problems.append("minReplicas 0 pauses the queue and needs maxReplicas 0")
    return problems


# ---- status -------------------------------------------------------------------------------


class Condition(_Model):
    """metav1.Condition."""

    type: str = Field(max_length=316, pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)$")
    status: Literal["True", "False", "Unknown"]
    observed_generation: int | None = Field(None, ge=0, json_schema_extra={"format": "int64"})
    last_transition_time: str = Field(json_schema_extra={"format": "date-time"})
    reason: str = Field(
        max_length=1024, min_length=1, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
    )
    message: str = Field(max_length=32768)


class _Status(_Model):
    observed_generation: int | None = Field(None, json_schema_extra={"format": "int64"})
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )


class SecretLocation(_Model):
    namespace: str
    name: str
    key: str


class TenantStatus(_Status):
    queued_jobs: int | None = None
    running_jobs: int | None = None
    dead_letter_jobs: int | None = None
    api_key_secret: SecretLocation | None = None


class ScheduleStatus(_Model):
    tenant: str
    name: str
    next_fire_time: str | None = Field(None, json_schema_extra={"format": "date-time"})
    last_fire_time: str | None = Field(None, json_schema_extra={"format": "date-time"})
    last_skip_time: str | None = Field(
        None, json_schema_extra={"format": "date-time"},
        description="the latest fire time that made no job (dropped, not retried)")
    last_skip_reason: Literal["overlap", "tenant_disabled", "backlog_full"] | None = None
    skipped_fires: int | None = Field(None, description="fire times that made no job")


class JobQueueStatus(_Status):
    queue: str | None = None
    queue_depth: int | None = Field(None, description="queued jobs, ready or scheduled")
    running_jobs: int | None = Field(None, description="leased or running")
    dead_letter_jobs: int | None = None
    oldest_job_age_seconds: int | None = Field(None, description="oldest ready queued job")
    replicas: int | None = Field(None, description="worker pods (Deployment status)")
    ready_replicas: int | None = None
    reaper_ready_replicas: int | None = None
    autoscaled: bool | None = None
    schedules: list[ScheduleStatus] | None = Field(
        None, description="each declared schedule's next and last fire time")
