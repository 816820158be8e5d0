"""Prometheus metrics of the whole runtime, in one registry.

Every process exposes the same names; a series exists in a process only once
that process touched it (the API counts submissions, the worker completions,
the reaper expiries). Label values stay bounded: tenants, queues, statuses,
priorities, route templates, components — never a job id, a raw path or a
free-form error text.

Queue depth and the oldest ready job's age come from the database. They are
set by `refresh_depth(rows)` from a periodic service
(`jobqueue.process.depth`, run by the API and the elected reaper), so a
scrape never costs a query.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from wsgiref.simple_server import WSGIServer

import prometheus_client
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram

from jobqueue.models import DepthRow, JobStatus

# `*_created` series double every counter's series count and nobody graphs
# them; restarts are visible from process_start_time_seconds anyway.
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

# Jobs run from milliseconds to the default 300 s timeout and beyond.
_JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                120.0, 300.0, 600.0, 1800.0, 3600.0)
# API calls are one or two round trips to Postgres.
_API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# -- queue state, from the database ------------------------------------------------
JOB_QUEUE_DEPTH = Gauge(
    "job_queue_depth", "Jobs queued (ready or scheduled) by tenant and queue",
    ["tenant_id", "queue"],
)
OLDEST_QUEUED_AGE = Gauge(
    "job_queue_oldest_ready_age_seconds",
    "Age of the oldest job that is ready to run and still waiting; 0 when none waits",
    ["tenant_id", "queue"],
)
JOBS_BY_STATUS = Gauge(
    "job_queue_jobs", "Unfinished and dead-lettered jobs by tenant, queue and status",
    ["tenant_id", "queue", "status"],
)

# -- job lifecycle -------------------------------------------------------------------
# Counter names omit `_total`: prometheus-client appends it on exposition.
JOBS_SUBMITTED = Counter(
    "jobs_submitted", "Jobs accepted by the API (idempotent replays not counted)",
    ["tenant_id", "priority"],
)
JOBS_COMPLETED = Counter(
    "jobs_completed",
    "Jobs that reached an outcome: succeeded, dlq, cancelled, or retry (failed, re-queued)",
    ["tenant_id", "status"],
)
JOB_DURATION = Histogram(
    "job_duration_seconds", "Handler run time of one attempt, by outcome",
    ["tenant_id", "status"], buckets=_JOB_BUCKETS,
)
LEASE_EXPIRED = Counter(
    "lease_expired", "Leases the reaper found expired and took back", ["tenant_id"]
)
SCHEDULE_FIRES = Counter(
    "schedule_fires",
    "Fire times of schedules the reaper handled: fired, overlap (skipped: the last fire's "
    "job unfinished), tenant_disabled, backlog_full (skipped: the tenant's max_queued "
    "reached), missed (skipped after downtime)",
    ["outcome"],
)
HISTORY_ARCHIVED = Counter(
    "history_archived", "Finished jobs the reaper moved from the hot table to history"
)
HISTORY_EXPIRED = Counter(
    "history_expired",
    "Finished jobs that left the hot table already past retention (not kept in history)",
)
HISTORY_PARTITIONS_DROPPED = Counter(
    "history_partitions_dropped", "Days of history dropped whole after retention"
)
# worker_id is unbounded over time (one per process start), acceptable only
# because each process exposes its own id alone: the label is constant per
# target. Aggregate it away in recording rules; never add it elsewhere.
LEASE_ACQUIRED = Counter("lease_acquired", "Jobs leased by this worker", ["worker_id"])
LEASE_LOST = Counter(
    "lease_lost", "Results dropped because the lease was no longer ours (fencing)", ["queue"]
)

# -- worker capacity -----------------------------------------------------------------
WORKER_BUSY_SLOTS = Gauge("worker_busy_slots", "Jobs this worker holds right now", ["queue"])
WORKER_SLOTS = Gauge("worker_slots", "This worker's concurrency limit", ["queue"])

# -- API -------------------------------------------------------------------------------
API_REQUESTS = Counter(
    "api_requests",
    "HTTP requests; endpoint is the route template (e.g. /v1/jobs/{id}), never the raw path",
    ["method", "endpoint", "status"],
)
API_LATENCY = Histogram(
    "api_request_latency_seconds", "HTTP request latency by route template",
    ["method", "endpoint"], buckets=_API_BUCKETS,
)

# -- health ----------------------------------------------------------------------------
DB_ERRORS = Counter(
    "database_errors",
    "Database calls that failed (unavailable, timeout, unexpected), by component",
    ["component"],
)
SERVICE_ERRORS = Counter(
    "service_errors",
    "Passes of a background service that failed and will be retried, by service",
    ["service"],
)
DEPTH_REFRESHED = Gauge(
    "job_queue_depth_refreshed_timestamp_seconds",
    "Unix time of the last successful depth refresh; stale means the numbers are too",
)

UNMATCHED_ENDPOINT = "<unmatched>"
"""`endpoint` label for requests that matched no route (404s): one value, not the path."""


def refresh_depth(rows: Iterable[DepthRow]) -> None:
    """Set the depth gauges from `db.stats.depth()` rows and drop vanished series.

    A (tenant, queue) with any unfinished or DLQ job keeps its series (depth 0
    when nothing is queued); one that no longer appears is removed, so a
    deleted tenant or an idle queue stops being exported.
    """
    depth: dict[tuple[str, ...], float] = {}
    age: dict[tuple[str, ...], float] = {}
    by_status: dict[tuple[str, ...], float] = {}
    for row in rows:
        key = (str(row.tenant_id), row.queue)
        depth.setdefault(key, 0)
        age.setdefault(key, 0.0)
        by_status[(*key, str(row.status))] = row.jobs
        if row.status is JobStatus.QUEUED:
            depth[key] += row.jobs
            if row.oldest_ready_age_seconds is not None:
                age[key] = max(age[key], row.oldest_ready_age_seconds)
    _replace(JOB_QUEUE_DEPTH, depth)
    _replace(OLDEST_QUEUED_AGE, age)
    _replace(JOBS_BY_STATUS, by_status)
    DEPTH_REFRESHED.set(time.time())


def _replace(gauge: Gauge, values: dict[tuple[str, ...], float]) -> None:
    for labels in _label_sets(gauge):
        if labels not in values:
            gauge.remove(*labels)
    for labels, value in values.items():
        gauge.labels(*labels).set(value)


def _label_sets(gauge: Gauge) -> list[tuple[str, ...]]:
    # Sample labels are built in label-name order, the order labels() takes.
    return [
        tuple(sample.labels.values())
        for family in gauge.collect()
        for sample in family.samples
    ]


def serve(port: int, addr: str = "0.0.0.0") -> WSGIServer:
    """Serve /metrics on `port` from a daemon thread (worker and reaper).

    Returns the server; `.shutdown()` stops it. Port 0 picks a free port,
    readable as `server.server_port`.
    """
    server, _thread = prometheus_client.start_http_server(port, addr=addr, registry=REGISTRY)
    return server


def render() -> tuple[bytes, str]:
    """The exposition body and its content type, for the API's /metrics route."""
    return prometheus_client.generate_latest(REGISTRY), CONTENT_TYPE_LATEST
