"""Pure status builders: observations in, status dicts out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobqueue.models import DepthRow, JobStatus, TenantId
from jobqueue_operator import status as st

T0 = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def row(status: JobStatus, jobs: int, age: float | None = None) -> DepthRow:
    return DepthRow(
        tenant_id=TenantId("t"), queue="q", status=status, jobs=jobs, oldest_ready_age_seconds=age
    )


def test_depth_sums_rows_by_meaning() -> None:
    depth = st.Depth.of(
        [
            row(JobStatus.QUEUED, 5, 12.5),
            row(JobStatus.QUEUED, 2, 40.0),  # another tenant's backlog in the same queue
            row(JobStatus.LEASED, 1),
            row(JobStatus.RUNNING, 3),
            row(JobStatus.DLQ, 4),
        ]
    )
    assert depth == st.Depth(queued=7, running=4, dead_letter=4, oldest_ready_age_seconds=40.0)
    assert st.Depth.of([]) == st.Depth()


def test_ready_conditions_when_all_is_well() -> None:
    conds = st.conditions(problem=None, ready_message="ok", generation=3, previous=None, now=T0)
    assert conds == [
        {
            "type": "Ready",
            "status": "True",
            "reason": "Reconciled",
            "message": "ok",
            "lastTransitionTime": "2030-01-02T03:04:05Z",
            "observedGeneration": 3,
        },
        {
            "type": "Degraded",
            "status": "False",
            "reason": "AsExpected",
            "message": "nothing to report",
            "lastTransitionTime": "2030-01-02T03:04:05Z",
            "observedGeneration": 3,
        },
    ]


def test_transition_time_moves_only_when_the_status_changes() -> None:
    first = st.conditions(problem=None, ready_message="ok", generation=1, previous=None, now=T0)
    later = T0 + timedelta(minutes=5)
    same = st.conditions(problem=None, ready_message="ok", generation=2, previous=first, now=later)
    assert [c["lastTransitionTime"] for c in same] == ["2030-01-02T03:04:05Z"] * 2
    assert same[0]["observedGeneration"] == 2

    problem = st.Problem(st.DATABASE_UNAVAILABLE, "connection refused")
    broken = st.conditions(
        problem=problem, ready_message="ok", generation=2, previous=same, now=later
    )
    ready, degraded = broken
    assert (ready["status"], ready["reason"]) == ("False", "DatabaseUnavailable")
    assert (degraded["status"], degraded["reason"]) == ("True", "DatabaseUnavailable")
    assert ready["message"] == "connection refused"
    assert ready["lastTransitionTime"] == "2030-01-02T03:09:05Z"


def test_jobqueue_status_reports_numbers_and_clears_them_when_unknown() -> None:
    worker = {"status": {"replicas": 3, "readyReplicas": 2}}
    status = st.jobqueue_status(
        generation=4,
        queue="emails",
        problem=None,
        depth=st.Depth(queued=10, running=2, dead_letter=1, oldest_ready_age_seconds=61.9),
        worker=worker,
        reaper={"status": {}},
        autoscaled=False,
        previous=None,
        now=T0,
    )
    assert status["observedGeneration"] == 4
    assert (status["queue"], status["queueDepth"], status["runningJobs"]) == ("emails", 10, 2)
    assert (status["deadLetterJobs"], status["oldestJobAgeSeconds"]) == (1, 61)
    assert (status["replicas"], status["readyReplicas"], status["reaperReadyReplicas"]) == (3, 2, 0)

    unknown = st.jobqueue_status(
        generation=4,
        queue="emails",
        problem=st.Problem(st.DATABASE_UNAVAILABLE, "down"),
        depth=None,
        worker=None,
        reaper=None,
        autoscaled=None,
        previous=status,
        now=T0,
    )
    # None deletes the field in a merge patch: no stale numbers while the database is down.
    assert unknown["queueDepth"] is None and unknown["replicas"] is None
    assert unknown["conditions"][0]["status"] == "False"


def test_empty_queue_has_age_zero() -> None:
    status = st.jobqueue_status(
        generation=1,
        queue="q",
        problem=None,
        depth=st.Depth(),
        worker=None,
        reaper=None,
        autoscaled=None,
        previous=None,
        now=T0,
    )
    assert status["oldestJobAgeSeconds"] == 0


def test_tenant_status() -> None:
    where = {"namespace": "ops", "name": "jobqueue-tenant-a", "key": "api-key"}
    status = st.tenant_status(
        generation=2,
        problem=None,
        depth=st.Depth(queued=3, running=1),
        api_key_secret=where,
        previous=None,
        now=T0,
    )
    assert (status["queuedJobs"], status["runningJobs"], status["deadLetterJobs"]) == (3, 1, 0)
    assert status["apiKeySecret"] == where
    assert status["conditions"][0]["type"] == "Ready"
