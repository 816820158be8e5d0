"""`jobqueue tenant create|list|update|disable`: tenants and their quotas.

`create` prints the tenant's API key once: only its digest is stored, so
it cannot be shown again (`update --new-key` issues another).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, fields
from typing import Any

from jobqueue import db, validation
from jobqueue.commands.common import add_actions, new_key, print_table, run_with_pool, tenant_id
from jobqueue.db import tenants
from jobqueue.models import Tenant, TenantQuotas

# Every quota of the tenants table, as flags (--max-concurrent, ...).
QUOTAS = tuple(f.name for f in fields(TenantQuotas) if f.name != "enabled")


def register(sub: Any) -> None:
    actions = add_actions(sub, "tenant", help="manage tenants")

    create = actions.add_parser("create", help="create a tenant and print its API key")
    create.add_argument("tenant_id")
    _quota_flags(create)
    create.set_defaults(func=run_create)

    ls = actions.add_parser("list", help="list tenants")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=run_list)

    update = actions.add_parser("update", help="change quotas, enable, or issue a new key")
    update.add_argument("tenant_id")
    _quota_flags(update)
    update.add_argument("--enable", action="store_true", help="re-enable a disabled tenant")
    update.add_argument("--new-key", action="store_true", help="issue an extra API key")
    update.set_defaults(func=run_update)

    disable = actions.add_parser("disable", help="refuse the tenant's requests and jobs")
    disable.add_argument("tenant_id")
    disable.set_defaults(func=run_disable)


def _quota_flags(p: argparse.ArgumentParser) -> None:
    for name in QUOTAS:
        p.add_argument(f"--{name.replace('_', '-')}", type=int, dest=name)


def quotas_of(args: argparse.Namespace) -> dict[str, Any]:
    """The quota flags given, each checked against the table's bounds."""
    given = {q: getattr(args, q) for q in QUOTAS if getattr(args, q) is not None}
    for name, value in given.items():
        if (problem := validation.quota_problem(name, value)) is not None:
            raise ValueError(f"--{name.replace('_', '-')}: {problem}")
    return given


def _print_key(tenant_id: str, key: str) -> None:
    print(f"api key for {tenant_id}: {key}")
    print("(shown once: only its digest is stored)")


def run_create(args: argparse.Namespace) -> int:
    tid = tenant_id(args.tenant_id)
    quotas = TenantQuotas(**quotas_of(args))

    async def go(pool: db.Pool) -> tuple[Tenant, str]:
        tenant = await tenants.create(pool, tenant_id=tid, quotas=quotas)
        return tenant, await new_key(pool, tenant.id)

    tenant, key = run_with_pool(go)
    print(f"tenant {tenant.id} created ({_describe(tenant)})")
    _print_key(tenant.id, key)
    return 0


def _describe(t: Tenant) -> str:
    state = "enabled" if t.enabled else "DISABLED"
    return (f"{state}, max_concurrent={t.max_concurrent}, rate={t.rate_per_minute}/min "
            f"burst {t.rate_burst}, weight={t.weight}, max_queued={t.max_queued}")


def run_list(args: argparse.Namespace) -> int:
    found = run_with_pool(tenants.list_tenants)
    if args.json:
        print(json.dumps([{**asdict(t), "created_at": t.created_at.isoformat(),
                           "updated_at": t.updated_at.isoformat()} for t in found]))
        return 0
    header = ("TENANT", "ENABLED", "MAX_CONCURRENT", "RATE/MIN", "BURST", "WEIGHT", "MAX_QUEUED")
    rows = [(t.id, str(t.enabled).lower(), str(t.max_concurrent), str(t.rate_per_minute),
             str(t.rate_burst), str(t.weight), str(t.max_queued)) for t in found]
    print_table(header, rows)
    return 0


def run_update(args: argparse.Namespace) -> int:
    tid = tenant_id(args.tenant_id)
    changes = quotas_of(args)
    if args.enable:
        changes["enabled"] = True
    if not changes and not args.new_key:
        raise ValueError("nothing to update: give a quota flag, --enable or --new-key")

    async def go(pool: db.Pool) -> tuple[Tenant, str | None]:
        tenant = (await tenants.update(pool, tenant_id=tid, **changes) if changes
                  else await tenants.get(pool, tenant_id=tid))
        return tenant, (await new_key(pool, tid) if args.new_key else None)

    tenant, key = run_with_pool(go)
    print(f"tenant {tenant.id}: {_describe(tenant)}")
    if key:
        _print_key(tenant.id, key)
    return 0


def run_disable(args: argparse.Namespace) -> int:
    tid = tenant_id(args.tenant_id)

    async def go(pool: db.Pool) -> Tenant:
        return await tenants.update(pool, tenant_id=tid, enabled=False)

    tenant = run_with_pool(go)
    print(f"tenant {tenant.id} disabled: its queued jobs wait, new requests are refused")
    return 0
