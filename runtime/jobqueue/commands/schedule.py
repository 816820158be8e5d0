"""`jobqueue schedule create|list|show|delete`: a tenant's cron schedules (admin).

`create` makes a schedule or replaces its template (the next fire time is
kept unless --cron or --timezone changed), and prints it as JSON with
"created". Schedules a JobQueue declares are the operator's: changing or
deleting them here is refused (exit 4). Bad cron or zone: exit 2.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from jobqueue.commands.common import (
    acting_tenant,
    add_actions,
    add_tenant_flag,
    parse_data,
    parse_priority,
    print_table,
    run_with_pool,
    tenant_filter,
)
from jobqueue.cron import MissedPolicy, OverlapPolicy
from jobqueue.db import schedules
from jobqueue.scheduling import Schedule, ScheduleSpec
from jobqueue.settings import RuntimeSettings


def register(sub: Any) -> None:
    actions = add_actions(sub, "schedule", help="cron schedules of a tenant")

    c = actions.add_parser("create", help="create, or replace the template of, a schedule")
    c.add_argument("name")
    add_tenant_flag(c)
    c.add_argument("--cron", required=True, help="five fields, e.g. '0 3 * * *'")
    c.add_argument("--timezone", default="UTC", help="an IANA zone, e.g. Europe/Berlin")
    c.add_argument("--type", required=True, help="the job type to fire")
    c.add_argument("--data", default="{}", help="the job's JSON payload (@file, @-)")
    c.add_argument("--queue", default="default")
    c.add_argument("--priority", default="normal")
    c.add_argument("--max-attempts", type=int)
    c.add_argument("--overlap", choices=[o.value for o in OverlapPolicy], default="allow",
                   help="skip: no fire while the previous fire's job is unfinished")
    c.add_argument("--missed", choices=[m.value for m in MissedPolicy], default="skip",
                   help="fire times missed during downtime: skip, or run_once for all")
    c.set_defaults(func=run_create)

    ls = actions.add_parser("list", help="by tenant and name")
    ls.add_argument("--tenant", help="only this tenant's (default: every tenant's)")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)

    for name, help_, fn in [("show", "one schedule as JSON", run_show),
                            ("delete", "delete; jobs it fired stay", run_delete)]:
        a = actions.add_parser(name, help=help_)
        a.add_argument("name")
        add_tenant_flag(a)
        a.set_defaults(func=fn)


def as_json(s: Schedule, **extra: object) -> dict[str, Any]:
    p = s.spec
    return {
        "id": str(s.id), "tenant_id": s.tenant_id, "name": p.name, "cron": p.cron,
        "timezone": p.timezone, "type": p.type, "data": p.data, "queue": p.queue,
        "priority": p.priority.name.lower(), "max_attempts": p.max_attempts,
        "overlap": p.overlap.value, "missed": p.missed.value, "owner": s.owner,
        "next_fire_at": s.next_fire_at.isoformat(),
        "last_fire_at": s.last_fire_at.isoformat() if s.last_fire_at else None,
        "last_job_id": str(s.last_job_id) if s.last_job_id else None,
        "last_skipped_at": s.last_skipped_at.isoformat() if s.last_skipped_at else None,
        "last_skip_reason": s.last_skip_reason.value if s.last_skip_reason else None,
        "skipped_fires": s.skipped_fires,
        **extra,
    }


def run_create(args: argparse.Namespace) -> int:
    tenant = acting_tenant(args, RuntimeSettings())
    spec = ScheduleSpec(
        name=args.name, cron=args.cron, timezone=args.timezone, type=args.type,
        data=parse_data(args.data), queue=args.queue, priority=parse_priority(args.priority),
        max_attempts=args.max_attempts, overlap=OverlapPolicy(args.overlap),
        missed=MissedPolicy(args.missed),
    )
    made, created = run_with_pool(
        lambda pool: schedules.upsert(pool, tenant_id=tenant, spec=spec))
    print(json.dumps(as_json(made, created=created)))
    return 0


def run_list(args: argparse.Namespace) -> int:
    tenant = tenant_filter(args.tenant)
    found = run_with_pool(
        lambda pool: schedules.list_schedules(pool, tenant_id=tenant))
    if args.json:
        print(json.dumps({"schedules": [as_json(s) for s in found]}))
        return 0
    header = ("TENANT", "NAME", "CRON", "TIMEZONE", "TYPE", "NEXT", "LAST", "OWNER")
    rows = [(s.tenant_id, s.spec.name, s.spec.cron, s.spec.timezone, s.spec.type,
             f"{s.next_fire_at:%Y-%m-%d %H:%M:%S}",
             f"{s.last_fire_at:%Y-%m-%d %H:%M:%S}" if s.last_fire_at else "-", s.owner or "-")
            for s in found]
    print_table(header, rows)
    return 0


def run_show(args: argparse.Namespace) -> int:
    tenant = acting_tenant(args, RuntimeSettings())
    found = run_with_pool(
        lambda pool: schedules.get(pool, tenant_id=tenant, name=args.name))
    print(json.dumps(as_json(found), indent=2))
    return 0


def run_delete(args: argparse.Namespace) -> int:
    tenant = acting_tenant(args, RuntimeSettings())
    run_with_pool(
        lambda pool: schedules.delete(pool, tenant_id=tenant, name=args.name))
    print(json.dumps({"deleted": args.name, "tenant_id": tenant}))
    return 0
