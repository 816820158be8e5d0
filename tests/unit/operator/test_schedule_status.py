"""status.schedules from stored schedules (pure): skip fields appear once a
fire time made no job, and validate against the CRD's status model."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from jobqueue.models import TenantId
from jobqueue.scheduling import Schedule, ScheduleSpec, SkipReason
from jobqueue_operator import models, schedule_sync

T0 = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)


def stored(**kw: object) -> Schedule:
    base: dict[str, object] = dict(
        id=uuid.uuid4(), tenant_id=TenantId("acme"),
        spec=ScheduleSpec(name="nightly", cron="30 2 * * *", type="report"), owner="ns/q",
        next_fire_at=T0, last_fire_at=None, last_job_id=None, created_at=T0, updated_at=T0)
    return Schedule(**{**base, **kw})  # type: ignore[arg-type]


def test_skip_fields_only_once_a_fire_time_made_no_job() -> None:
    never, refused = schedule_sync.status_of([
        stored(),
        stored(last_skipped_at=T0, last_skip_reason=SkipReason.BACKLOG_FULL, skipped_fires=3),
    ])
    assert never == {"tenant": "acme", "name": "nightly", "nextFireTime": "2026-03-01T02:30:00Z"}
    assert (refused["lastSkipTime"], refused["lastSkipReason"], refused["skippedFires"]) == (
        "2026-03-01T02:30:00Z", "backlog_full", 3)
    parsed = models.ScheduleStatus.model_validate(refused)
    assert parsed.last_skip_reason == "backlog_full" and parsed.skipped_fires == 3
