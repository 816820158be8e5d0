"""Settings, grouped by component, built once at start-up and passed down.

This module is the runtime's only reader of the environment: every field
reads from JOBQUEUE_<GROUP>_<FIELD> (DATABASE_URL also works for the
database URL; a few fields take a conventional name as well, given below).
`RuntimeSettings` is the root a process starts from; the CLI's flags
override its fields. Defaults say why they are what they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, Literal, TypeVar, overload

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)


class DatabaseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_DATABASE_", populate_by_name=True)

    url: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("JOBQUEUE_DATABASE_URL", "DATABASE_URL"),
        description="postgresql://… ; unset under `jobqueue dev` starts an embedded server",
    )
    pool_min: int = Field(1, ge=0, description="one warm connection answers the first request")
    pool_max: int = Field(10, ge=1, description="enough for a worker's fetch, heartbeat, acks")
    # 0 disables asyncpg's prepared-statement cache: needed behind PgBouncer
    # in transaction mode.
    statement_cache_size: int = Field(256, ge=0)
    # PgBouncer in transaction mode breaks LISTEN: poll only.
    listen: bool = True

    def dsn(self) -> str:
        if self.url is None:
            raise ValueError("no database configured: set DATABASE_URL or JOBQUEUE_DATABASE_URL")
        return self.url.get_secret_value()


# Leases are for free slots: fewer slots mean smaller leases and more round
# trips per job (10 slots drained at a third of the rate of 100).
DEFAULT_CONCURRENCY: int = 100


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_WORKER_", populate_by_name=True)

    queue: str = "default"
    concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1, le=10_000)
    handlers: str = Field(
        "",
        validation_alias=AliasChoices("JOBQUEUE_HANDLERS", "JOBQUEUE_WORKER_HANDLERS"),
        description="comma-separated modules to import for @handler",
    )
    # Long enough to ride out a GC pause or a slow network; short enough
    # that a crashed worker's jobs come back within half a minute.
    lease_seconds: float = Field(30.0, gt=1)
    # At most a third of the lease: two heartbeats may fail before it expires.
    # 0 means exactly a third of lease_seconds.
    heartbeat_seconds: float = Field(0.0, ge=0)
    # Fallback when no NOTIFY arrives (or LISTEN is off).
    poll_seconds: float = Field(1.0, gt=0)
    grace_seconds: float = Field(25.0, ge=0, description="SIGTERM: time for in-flight jobs")
    backoff_base_seconds: float = Field(1.0, gt=0)
    backoff_cap_seconds: float = Field(600.0, gt=0)
    # One info line per succeeded job with its duration ("job succeeded");
    # the fraction of them logged, for queues that run thousands a second
    # (0 turns them off). Failures always log their line.
    log_finished_sample: float = Field(1.0, ge=0, le=1)
    # ctx.progress() reports are written at most this often per worker (one
    # statement for every job that reported meanwhile).
    progress_seconds: float = Field(0.5, gt=0)
    metrics_port: int | None = None

    @model_validator(mode="after")
    def _heartbeat_well_inside_lease(self) -> WorkerSettings:
        # A heartbeat close to the lease re-runs live jobs (pgqueuer #430):
        # one late heartbeat must not be enough to lose a lease.
        if self.heartbeat_seconds == 0:
            self.heartbeat_seconds = self.lease_seconds / 3
        if self.heartbeat_seconds > self.lease_seconds / 3:
            raise ValueError(
                f"heartbeat_seconds ({self.heartbeat_seconds}) must be at most a third of "
                f"lease_seconds ({self.lease_seconds})"
            )
        return self


class ReaperSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_REAPER_", populate_by_name=True)

    interval_seconds: float = Field(1.0, gt=0)
    batch: int = Field(500, ge=1)
    retention_seconds: float = Field(7 * 24 * 3600.0, ge=0, description="keep history a week")
    # Finished jobs stay in the hot table this long (their idempotency keys
    # and unique identities hold, bulk retry and the dashboard's counts see
    # them), then move to history (docs/design.md, "History"). A day, the
    # usual life of an idempotency key; never longer than retention.
    archive_after_seconds: float = Field(24 * 3600.0, ge=0)
    archive_batch: int = Field(
        1000, ge=1,
        validation_alias=AliasChoices("JOBQUEUE_REAPER_ARCHIVE_BATCH",
                                      "JOBQUEUE_REAPER_PRUNE_BATCH", "archive_batch"),
    )
    leader_election: str = Field("postgres", pattern="^(postgres|kubernetes|none)$")
    leader_lease_seconds: float = Field(15.0, gt=1)
    # The leader row, or the coordination.k8s.io/v1 Lease object: replicas
    # that share a name elect one leader among them.
    lease_name: str = "jobqueue-reaper"
    # Unset: the pod's namespace, else the kubeconfig's.
    lease_namespace: str | None = None
    # Unset: the in-cluster service account, at the apiserver the kubelet
    # names in every pod's environment.
    kubeconfig: str | None = Field(
        None, validation_alias=AliasChoices("JOBQUEUE_REAPER_KUBECONFIG", "KUBECONFIG")
    )
    kubernetes_service_host: str | None = Field(None, validation_alias="KUBERNETES_SERVICE_HOST")
    kubernetes_service_port: int = Field(443, validation_alias="KUBERNETES_SERVICE_PORT")
    metrics_port: int | None = None
    # A schedule's fire time reached later than this counts as missed (its
    # missed-fire policy decides); far above a leader change (one lease),
    # so a failover never skips a fire.
    schedule_grace_seconds: float = Field(300.0, gt=0)
    # Schedules read per pass; a full batch goes again at once.
    schedule_batch: int = Field(100, ge=1)


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_API_", populate_by_name=True)

    host: str = Field("127.0.0.1", description="0.0.0.0 in a pod; loopback keeps dev private")
    port: int = Field(8000, ge=0, le=65535)
    # HS256 needs at least 32 bytes of secret to be worth its name; unset
    # refuses to start (`jobqueue dev` generates one).
    jwt_secret: SecretStr | None = None
    # Short enough that a disabled tenant's or a leaked token dies soon;
    # clients fetch a new one with their API key.
    token_ttl_seconds: int = Field(900, ge=10, le=86400)
    # A static bearer credential that acts across tenants (operators, support).
    admin_token: SecretStr | None = None
    # One job's `data`, serialised. Bigger payloads belong in object storage.
    max_payload_bytes: int = Field(256 * 1024, ge=1024)
    # One transaction; bigger batches hold row locks and memory for too long.
    batch_max: int = Field(1000, ge=1, le=10_000)
    # Tenant quotas and enabled flags are read through a cache this old at
    # most, so the hot path is the rate-limit call plus the insert.
    tenant_cache_seconds: float = Field(5.0, ge=0)
    # Every request's database work gives up after this and answers 503.
    db_timeout_seconds: float = Field(10.0, gt=0)
    # Queue depth gauges are refreshed this often.
    depth_refresh_seconds: float = Field(5.0, gt=0)
    # Events buffered per WebSocket subscriber before it counts as too slow
    # and is dropped.
    ws_queue_size: int = Field(1000, ge=1)
    # A whole batch request; also bounds the memory one request can take.
    max_batch_bytes: int = Field(16 * 1024 * 1024, ge=64 * 1024)
    # Metrics name every tenant and queue: they are served without
    # credentials only on this port of their own (on `metrics_host`, else
    # `host`), for Prometheus; the public port's /metrics needs the admin
    # token. Unset: no metrics port.
    metrics_port: int | None = Field(None, ge=0, le=65535)
    metrics_host: str | None = None
    # Wrong API keys at POST /auth/token, per client address: a person who
    # mistypes gets many tries; a guesser gets 10 a minute after the first 20.
    auth_address_failure_burst: int = Field(20, ge=1)
    auth_address_failures_per_minute: float = Field(10.0, gt=0)
    # Per tenant named, from every address together: past it, each address
    # gets one guess per its whole budget (see routes/auth.py); the owner's
    # right key still works.
    auth_tenant_failure_burst: int = Field(100, ge=1)
    auth_tenant_failures_per_minute: float = Field(60.0, gt=0)

    @model_validator(mode="after")
    def _metrics_port_of_its_own(self) -> ApiSettings:
        if self.metrics_port and self.metrics_port == self.port:
            raise ValueError(
                f"metrics_port ({self.metrics_port}) must differ from port: "
                "the public port never serves metrics without credentials"
            )
        return self


class LogSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JOBQUEUE_LOG_")

    # JSON lines for log collectors; `console` for people (`jobqueue dev`).
    format: Literal["json", "console"] = "json"
    level: str = "INFO"


class TracingSettings(BaseSettings):
    """The standard OpenTelemetry variables, under their own names: what
    decides whether and where spans go (the OTLP exporter itself still reads
    its endpoint, headers and timeout from them)."""

    model_config = SettingsConfigDict(populate_by_name=True)

    # Strings as the specification has them: only "true" disables, and an
    # unknown exporter is refused when tracing starts, not when it is read.
    sdk_disabled: str = Field("", validation_alias="OTEL_SDK_DISABLED")
    traces_exporter: str = Field("", validation_alias="OTEL_TRACES_EXPORTER")
    otlp_endpoint: str = Field("", validation_alias="OTEL_EXPORTER_OTLP_ENDPOINT")
    otlp_traces_endpoint: str = Field("", validation_alias="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    service_name: str = Field("", validation_alias="OTEL_SERVICE_NAME")


class CliSettings(BaseSettings):
    """What only the command line reads."""

    model_config = SettingsConfigDict(populate_by_name=True)

    # The tenant `jobqueue submit` acts for when --tenant is not given.
    tenant: str | None = Field(None, validation_alias="JOBQUEUE_TENANT")
    # "1" lets a failing command print its traceback instead of one line.
    debug: str = Field("", validation_alias="JOBQUEUE_DEBUG")


class _Section(Generic[S]):
    """One section of `RuntimeSettings`, named by its attribute: built from
    the environment under its overrides when first asked for, then kept."""

    def __init__(self, build: type[S]) -> None:
        self._build = build
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, root: None, owner: type) -> _Section[S]: ...
    @overload
    def __get__(self, root: RuntimeSettings, owner: type) -> S: ...
    def __get__(self, root: RuntimeSettings | None, owner: type) -> S | _Section[S]:
        if root is None:
            return self
        # Kept in the instance, which then shadows this (non-data) descriptor.
        section = root.__dict__[self.name] = self._build(**root.given(self.name))
        return section


class RuntimeSettings:
    """The root every process starts from: one section per component.

    Each section is read from the environment when first asked for, so a
    command never fails on a section it does not use (`jobqueue submit`
    does not need a JWT secret). `overrides[section]` are fields given on
    the command line: they win over the environment, and None means "not
    given". The sections are built by pydantic, so a flag is validated like
    the variable it overrides.
    """

    database = _Section(DatabaseSettings)
    worker = _Section(WorkerSettings)
    reaper = _Section(ReaperSettings)
    api = _Section(ApiSettings)
    log = _Section(LogSettings)
    tracing = _Section(TracingSettings)
    cli = _Section(CliSettings)

    def __init__(self, **overrides: Mapping[str, Any]) -> None:
        sections = {v.name for v in vars(RuntimeSettings).values() if isinstance(v, _Section)}
        if unknown := set(overrides) - sections:
            raise TypeError(f"no settings section {sorted(unknown)}")
        self._overrides = {
            name: {k: v for k, v in given.items() if v is not None}
            for name, given in overrides.items()
        }

    def given(self, section: str) -> dict[str, Any]:
        """The fields of `section` set on the command line."""
        return self._overrides.get(section, {})
