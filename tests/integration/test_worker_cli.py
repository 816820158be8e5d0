"""The admin CLI around the worker on real Postgres: `jobqueue tenant`,
`jobqueue submit`, `jobqueue jobs`; bad input gets one clear line and a
non-zero exit, and changes nothing.

Commands run in this process through `cli.main` (the console script's
entry point), in a thread of their own since each calls asyncio.run; a
process per command would cost seconds each on a busy machine. The worker's
start-up check runs as a real process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

from jobqueue import apikeys, db
from jobqueue.db import jobs, tenants
from jobqueue.models import JobId, JobStatus, TenantId, TenantQuotas
from tests.support.cli import cli
from tests.support.procs import REPO


async def test_tenant_create_prints_a_working_key_once(dsn: str, pool: db.Pool) -> None:
    out = cli(dsn, "tenant", "create", "acme", "--max-concurrent", "7")
    assert out.returncode == 0, out.stderr
    key = next(w for w in out.stdout.split() if w.startswith("jq_"))
    creds = await tenants.credentials(pool, tenant_id=TenantId("acme"))
    assert apikeys.matches(key, creds.key_hashes)
    assert key not in json.dumps(creds.key_hashes)
    assert (await tenants.get(pool, tenant_id=TenantId("acme"))).max_concurrent == 7

    again = cli(dsn, "tenant", "create", "acme")
    assert again.returncode != 0 and "already exists" in again.stderr
    bad = cli(dsn, "tenant", "create", "Not_A_Name")
    assert bad.returncode != 0 and bad.stderr.startswith("jobqueue: ")
    assert len(await tenants.list_tenants(pool)) == 1

    listed = cli(dsn, "tenant", "list", "--json")
    assert [t["id"] for t in json.loads(listed.stdout)] == ["acme"]
    upd = cli(dsn, "tenant", "update", "acme", "--weight", "3", "--new-key")
    assert upd.returncode == 0 and "jq_" in upd.stdout
    assert len((await tenants.credentials(pool, tenant_id=TenantId("acme"))).key_hashes) == 2
    assert cli(dsn, "tenant", "disable", "acme").returncode == 0
    t = await tenants.get(pool, tenant_id=TenantId("acme"))
    assert (t.weight, t.enabled) == (3, False)
    missing = cli(dsn, "tenant", "disable", "nobody")
    assert missing.returncode == 3 and "not found" in missing.stderr


async def test_submit_is_idempotent_and_jobs_commands_steer_jobs(
    dsn: str, pool: db.Pool
) -> None:
    await tenants.create(pool, tenant_id=TenantId("t1"), quotas=TenantQuotas())
    args = ["submit", "sleep", "--tenant", "t1", "--data", '{"seconds": 1}',
            "--priority", "high", "--idempotency-key", "k1"]
    first = cli(dsn, *args)
    assert first.returncode == 0, first.stderr
    made = json.loads(first.stdout)
    assert made["replayed"] is False and made["priority"] == "high"
    replay = json.loads(cli(dsn, *args).stdout)
    assert replay["id"] == made["id"] and replay["replayed"] is True
    conflict = cli(dsn, "submit", "sleep", "--tenant", "t1", "--data", '{"seconds": 2}',
                   "--idempotency-key", "k1")
    assert conflict.returncode == 4 and "idempotency key" in conflict.stderr
    assert cli(dsn, "submit", "echo", "--tenant", "t1", "--data", "{not json").returncode == 2
    assert cli(dsn, "submit", "echo", "--tenant", "ghost").returncode == 3
    assert "which tenant" in cli(dsn, "submit", "echo").stderr
    from_stdin = cli(dsn, "submit", "echo", "--tenant", "t1", "--data", "@-", stdin='[1, 2]')
    assert from_stdin.returncode == 0
    assert (await jobs.list_jobs(pool, tenant_id=TenantId("t1"))).total == 2

    jid = JobId(uuid.UUID(made["id"]))
    listed = cli(dsn, "jobs", "list", "--tenant", "t1", "--status", "queued")
    assert made["id"] in listed.stdout and "page 1, 2 of 2" in listed.stdout
    shown = json.loads(cli(dsn, "jobs", "show", made["id"]).stdout)
    assert shown["data"] == {"seconds": 1} and shown["status"] == "queued"
    other = cli(dsn, "jobs", "show", made["id"], "--tenant", "someone-else")
    assert other.returncode == 3
    assert cli(dsn, "jobs", "show", "not-a-uuid").returncode == 2
    # retry only from dlq/cancelled; cancel first, then retry.
    early = cli(dsn, "jobs", "retry", made["id"])
    assert early.returncode == 4 and "only dlq or cancelled" in early.stderr
    assert json.loads(cli(dsn, "jobs", "cancel", made["id"]).stdout)["status"] == "cancelled"
    back = json.loads(cli(dsn, "jobs", "retry", made["id"], "--reset-attempts").stdout)
    assert back["status"] == "queued" and back["attempt"] == 0
    job = await jobs.get(pool, job_id=jid)
    assert job.status is JobStatus.QUEUED and job.lease_owner is None


def test_worker_refuses_to_start_with_a_bad_handler_module(dsn: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "jobqueue.cli", "worker", "--handlers",
         "no_such_module_for_jobqueue"],
        capture_output=True, text=True, env={**os.environ, "DATABASE_URL": dsn}, cwd=REPO,
        timeout=60,
    )
    assert out.returncode == 2  # bad input (a flag naming what cannot be loaded)
    assert out.stderr.strip().splitlines()[-1].startswith(
        "jobqueue: cannot import handler module 'no_such_module_for_jobqueue'")
