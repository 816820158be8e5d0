"""`jobqueue schedule` as a real process against real PostgreSQL."""

from __future__ import annotations

import json

from jobqueue import db
from jobqueue.db import schedules
from jobqueue.scheduling import ScheduleSpec
from tests import factories
from tests.integration.test_cli_errors import jobqueue


async def test_schedule_create_list_show_delete(dsn: str, pool: db.Pool) -> None:
    await factories.tenant(pool, "acme")
    env = {"JOBQUEUE_TENANT": "acme"}  # the default of --tenant
    made = jobqueue(dsn, "schedule", "create", "nightly", "--cron", "30 2 * * *",
                    "--timezone", "Europe/Berlin", "--type", "report", "--data", '{"a": 1}',
                    "--overlap", "skip", "--missed", "run_once", env=env)
    assert made.returncode == 0, made
    s = json.loads(made.stdout)
    assert (s["created"], s["cron"], s["overlap"], s["missed"]) == (
        True, "30 2 * * *", "skip", "run_once")
    again = jobqueue(dsn, "schedule", "create", "nightly", "--cron", "30 2 * * *",
                     "--timezone", "Europe/Berlin", "--type", "report", env=env)
    assert json.loads(again.stdout)["created"] is False
    assert json.loads(again.stdout)["next_fire_at"] == s["next_fire_at"]
    listed = jobqueue(dsn, "schedule", "list")
    assert listed.returncode == 0 and "nightly" in listed.stdout and "acme" in listed.stdout
    shown = jobqueue(dsn, "schedule", "show", "nightly", env=env)
    assert json.loads(shown.stdout)["id"] == s["id"]
    assert jobqueue(dsn, "schedule", "delete", "nightly", env=env).returncode == 0
    assert await schedules.list_schedules(pool, tenant_id=None) == []


async def test_a_jobqueues_schedule_cannot_be_changed_from_the_cli(
    dsn: str, pool: db.Pool
) -> None:
    t = await factories.tenant(pool, "acme")
    await schedules.upsert(pool, tenant_id=t.id, owner="ns/jq",
                           spec=ScheduleSpec(name="owned", cron="* * * * *", type="t"))
    for argv in (["schedule", "delete", "owned"],
                 ["schedule", "create", "owned", "--cron", "0 * * * *", "--type", "t"]):
        r = jobqueue(dsn, *argv, "--tenant", "acme")
        assert r.returncode == 4, r
        assert len(r.stderr.splitlines()) == 1 and "JobQueue ns/jq" in r.stderr
    assert len(await schedules.list_schedules(pool, tenant_id=None)) == 1
