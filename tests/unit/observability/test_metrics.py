from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from jobqueue.models import DepthRow, JobStatus, TenantId
from jobqueue.observability import metrics


def row(
    tenant: str, queue: str, status: JobStatus, jobs: int, age: float | None = None
) -> DepthRow:
    return DepthRow(tenant_id=TenantId(tenant), queue=queue, status=status, jobs=jobs,
                    oldest_ready_age_seconds=age)


def samples(name: str) -> dict[tuple[str, ...], float]:
    body, _ = metrics.render()
    out: dict[tuple[str, ...], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            if s.name == name:
                out[tuple(sorted(s.labels.values()))] = s.value
    return out


def test_refresh_depth_sets_depth_age_and_per_status_counts() -> None:
    metrics.refresh_depth([
        row("a", "q", JobStatus.QUEUED, 7, 12.5),
        row("a", "q", JobStatus.RUNNING, 2),
        row("b", "q", JobStatus.DLQ, 1),
    ])
    assert samples("job_queue_depth") == {("a", "q"): 7, ("b", "q"): 0}
    assert samples("job_queue_oldest_ready_age_seconds") == {("a", "q"): 12.5, ("b", "q"): 0}
    assert samples("job_queue_jobs")[("a", "q", "running")] == 2
    assert samples("job_queue_depth_refreshed_timestamp_seconds")[()] > 0


def test_refresh_depth_clears_label_sets_that_vanished() -> None:
    metrics.refresh_depth([row("gone", "q", JobStatus.QUEUED, 3, 1.0),
                           row("stay", "q", JobStatus.QUEUED, 1, 1.0)])
    metrics.refresh_depth([row("stay", "q", JobStatus.QUEUED, 4, 2.0)])
    assert samples("job_queue_depth") == {("q", "stay"): 4}
    assert samples("job_queue_oldest_ready_age_seconds") == {("q", "stay"): 2.0}
    assert ("gone", "q", "queued") not in samples("job_queue_jobs")
    metrics.refresh_depth([])
    assert samples("job_queue_depth") == {}


def test_counters_expose_total_names_and_parse() -> None:
    metrics.JOBS_SUBMITTED.labels("unit", "high").inc()
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(body.decode())}
    # The parser strips `_total` from counter family names.
    assert {"jobs_submitted", "jobs_completed", "lease_expired", "lease_acquired",
            "api_requests", "database_errors", "job_duration_seconds",
            "api_request_latency_seconds", "job_queue_depth", "worker_busy_slots"} <= names
    assert 'jobs_submitted_total{priority="high",tenant_id="unit"}' in body.decode()
    assert "_created" not in body.decode()
