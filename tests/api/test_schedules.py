"""Schedule routes through a real API process (docs/design.md, invariant 13)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from jobqueue import db
from jobqueue.db import schedules
from jobqueue.scheduling import ScheduleSpec
from tests.support import api as support

BODY = {"cron": "30 2 * * *", "timezone": "Europe/Berlin", "type": "report",
        "data": {"kind": "daily"}, "queue": "reports", "priority": "high", "max_attempts": 3,
        "overlap": "skip", "missed": "run_once"}


def name() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


async def test_put_creates_then_replaces_and_get_list_delete_answer(
    client_a: httpx.AsyncClient, client_b: httpx.AsyncClient, tenant_a: support.TenantKey
) -> None:
    n = name()
    made = await client_a.put(f"/v1/schedules/{n}", json=BODY)
    assert made.status_code == 201, made.text
    s = made.json()
    assert (s["tenant_id"], s["name"], s["cron"], s["timezone"], s["priority"]) == (
        tenant_a.id, n, "30 2 * * *", "Europe/Berlin", "high")
    assert (s["overlap"], s["missed"], s["owner"], s["last_fire_at"]) == (
        "skip", "run_once", None, None)
    assert (s["last_skipped_at"], s["last_skip_reason"], s["skipped_fires"]) == (None, None, 0)
    assert s["next_fire_at"].endswith(("T00:30:00Z", "T01:30:00Z"))  # 02:30 Berlin, in UTC
    again = await client_a.put(f"/v1/schedules/{n}", json={**BODY, "data": {"kind": "x"}})
    assert again.status_code == 200 and again.json()["next_fire_at"] == s["next_fire_at"]
    assert (await client_a.get(f"/v1/schedules/{n}")).json()["data"] == {"kind": "x"}
    listed = (await client_a.get("/v1/schedules")).json()["schedules"]
    assert n in [x["name"] for x in listed]
    assert (await client_b.get(f"/v1/schedules/{n}")).status_code == 404
    assert n not in [x["name"] for x in (await client_b.get("/v1/schedules")).json()["schedules"]]
    assert (await client_b.delete(f"/v1/schedules/{n}")).status_code == 404
    assert (await client_a.delete(f"/v1/schedules/{n}")).status_code == 204
    assert (await client_a.get(f"/v1/schedules/{n}")).status_code == 404


@pytest.mark.parametrize(
    ("change", "phrase"),
    [
        ({"cron": "61 * * * *"}, "minute"),
        ({"cron": "* * * *"}, "5 fields"),
        ({"cron": "0 0 30 2 *"}, "day"),
        ({"timezone": "Mars/Olympus"}, "time zone"),
        ({"overlap": "sometimes"}, "overlap"),
        ({"missed": "all"}, "missed"),
        ({"type": "bad type"}, "type"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"extra": 1}, "extra"),
    ],
)
async def test_bad_schedules_are_422_json_and_store_nothing(
    client_a: httpx.AsyncClient, change: dict[str, object], phrase: str
) -> None:
    n = name()
    r = await client_a.put(f"/v1/schedules/{n}", json={**BODY, **change})
    assert r.status_code == 422, r.text
    assert phrase in r.text
    assert r.json()["error"] in ("validation_error", "invalid_input")
    assert (await client_a.get(f"/v1/schedules/{n}")).status_code == 404


async def test_a_bad_name_is_422(client_a: httpx.AsyncClient) -> None:
    r = await client_a.put("/v1/schedules/Bad_Name", json=BODY)
    assert r.status_code == 422, r.text


async def test_a_jobqueues_schedule_is_read_only_here(
    client_a: httpx.AsyncClient, tenant_a: support.TenantKey, api_pool: db.Pool
) -> None:
    n = name()
    await schedules.upsert(api_pool, tenant_id=tenant_a.id, owner="default/emails",
                           spec=ScheduleSpec(name=n, cron="* * * * *", type="t"))
    got = await client_a.get(f"/v1/schedules/{n}")
    assert got.json()["owner"] == "default/emails"
    for r in (await client_a.put(f"/v1/schedules/{n}", json=BODY),
              await client_a.delete(f"/v1/schedules/{n}")):
        assert r.status_code == 409, r.text
        assert "JobQueue default/emails" in r.json()["detail"]


async def test_the_admin_lists_every_tenants_schedules_but_owns_none(
    admin: httpx.AsyncClient, client_a: httpx.AsyncClient, tenant_a: support.TenantKey
) -> None:
    n = name()
    assert (await client_a.put(f"/v1/schedules/{n}", json=BODY)).status_code == 201
    listed = (await admin.get("/v1/schedules")).json()["schedules"]
    assert (tenant_a.id, n) in [(x["tenant_id"], x["name"]) for x in listed]
    assert (await admin.put(f"/v1/schedules/{name()}", json=BODY)).status_code == 403
