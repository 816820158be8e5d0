"""Bad input to every subcommand of the real `jobqueue` CLI, run as a
process against a real PostgreSQL: one readable line on stderr, exit code
2 for bad input (1 for a runtime failure; 3 not found, 5 unavailable), no
traceback, and nothing stored.

`jobqueue submit` refuses what the HTTP API refuses (the same checks,
`jobqueue.validation`), so types, queues and keys the API would reject no
longer reach the table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobqueue import db
from jobqueue.models import TenantId
from jobqueue.validation import MAX_JSON_DEPTH
from tests import factories
from tests.conftest import PgServer, create_database, drop_database
from tests.support.procs import REPO

TENANT = "acme"
MISSING_JOB = "00000000-0000-0000-0000-000000000000"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def jobqueue(dsn: str, *args: str, env: dict[str, str] | None = None, stdin: str = "") -> Run:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("JOBQUEUE_", "DATABASE_URL", "OTEL_"))}
    done = subprocess.run(
        [sys.executable, "-m", "jobqueue.cli", *args],
        env={**base, "DATABASE_URL": dsn, **(env or {})},
        input=stdin, capture_output=True, text=True, timeout=60, cwd=REPO,
    )
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
async def cli_dsn(pg_server: PgServer, template_db: str) -> AsyncIterator[str]:
    name = await create_database(pg_server, template_db)
    try:
        pool = await db.create_pool(pg_server.dsn_for(name), min_size=1, max_size=2)
        try:
            await factories.tenant(pool, TENANT)
        finally:
            await pool.close()
        yield pg_server.dsn_for(name)
    finally:
        await drop_database(pg_server, name)


@pytest.fixture(scope="module")
async def cli_pool(cli_dsn: str) -> AsyncIterator[db.Pool]:
    pool = await db.create_pool(cli_dsn, min_size=1, max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


async def stored(pool: db.Pool) -> tuple[int, int, int, int]:
    """Rows of every table a command could write, and a digest of the quotas."""
    row = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM tenants),"
        " (SELECT count(*) FROM api_keys),"
        " (SELECT coalesce(sum(weight + max_concurrent + max_queued), 0) FROM tenants)"
    )
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


SUBMIT = ["submit", "echo", "--tenant", TENANT]
SCHEDULE = ["schedule", "create", "nightly", "--tenant", TENANT, "--type", "report"]
# (id, argv, extra env, exit code, a phrase the line must hold)
CASES: list[tuple[str, list[str], dict[str, str], int, str]] = [
    ("data-missing-file", [*SUBMIT, "--data", "@/no/such/file"], {}, 2, "cannot read --data"),
    ("data-directory", [*SUBMIT, "--data", "@/"], {}, 2, "cannot read --data"),
    ("data-not-json", [*SUBMIT, "--data", "{not json"], {}, 2, "not valid JSON"),
    ("data-nested-past-limit", [*SUBMIT, "--data", nested(MAX_JSON_DEPTH + 1)], {}, 2,
     f"{MAX_JSON_DEPTH} levels"),
    ("data-nested-500", [*SUBMIT, "--data", nested(500)], {}, 2, f"{MAX_JSON_DEPTH} levels"),
    ("data-nested-5000", [*SUBMIT, "--data", nested(5000)], {}, 2, f"{MAX_JSON_DEPTH} levels"),
    ("data-nul", [*SUBMIT, "--data", '{"a": "x\\u0000y"}'], {}, 2, "NUL"),
    ("data-lone-surrogate", [*SUBMIT, "--data", '["\\ud800"]'], {}, 2, "surrogate"),
    ("data-nan", [*SUBMIT, "--data", '{"x": NaN}'], {}, 2, "NaN"),
    ("data-null", [*SUBMIT, "--data", "null"], {}, 2, "null"),
    ("delay-1e20", [*SUBMIT, "--delay-seconds", "1e20"], {}, 2, "--delay-seconds"),
    ("delay-nan", [*SUBMIT, "--delay-seconds", "nan"], {}, 2, "--delay-seconds"),
    ("delay-inf", [*SUBMIT, "--delay-seconds", "-inf"], {}, 2, "--delay-seconds"),
    ("tenant-invalid", ["submit", "echo", "--tenant", "Not_A_Name"], {}, 2, "tenant id"),
    ("tenant-missing", ["submit", "echo"], {}, 2, "which tenant"),
    ("tenant-unknown", ["submit", "echo", "--tenant", "ghost"], {}, 3, "unknown tenant"),
    ("max-attempts-0", [*SUBMIT, "--max-attempts", "0"], {}, 2, "max_attempts"),
    ("max-attempts-1001", [*SUBMIT, "--max-attempts", "1001"], {}, 2, "max_attempts"),
    ("max-attempts-text", [*SUBMIT, "--max-attempts", "x"], {}, 2, "--max-attempts"),
    ("timeout-huge", [*SUBMIT, "--timeout-seconds", "999999999999"], {}, 2, "timeout_seconds"),
    ("timeout-0", [*SUBMIT, "--timeout-seconds", "0"], {}, 2, "timeout_seconds"),
    ("type-invalid", ["submit", "bad type!", "--tenant", TENANT], {}, 2, "type"),
    ("type-long", ["submit", "t" * 201, "--tenant", TENANT], {}, 2, "type"),
    ("queue-invalid", [*SUBMIT, "--queue", "bad queue"], {}, 2, "queue"),
    ("key-invalid", [*SUBMIT, "--idempotency-key", "has space"], {}, 2, "idempotency key"),
    ("key-long", [*SUBMIT, "--idempotency-key", "k" * 256], {}, 2, "idempotency key"),
    ("priority-unknown", [*SUBMIT, "--priority", "urgent"], {}, 2, "--priority"),
    ("priority-7", [*SUBMIT, "--priority", "7"], {}, 2, "--priority"),
    ("unique-state", [*SUBMIT, "--unique-states", "queued,lost"], {}, 2, "--unique-states"),
    ("unique-period-0", [*SUBMIT, "--unique-period-seconds", "0"], {}, 2, "period_seconds"),
    ("unique-keys-list-data", [*SUBMIT, "--data", "[1]", "--unique-keys", "a"], {}, 2,
     "JSON object"),
    ("schedule-bad-cron", [*SCHEDULE, "--cron", "61 * * * *"], {}, 2, "minute"),
    ("schedule-bad-zone", [*SCHEDULE, "--cron", "* * * * *", "--timezone", "Mars/X"], {}, 2,
     "time zone"),
    ("schedule-bad-name", ["schedule", "create", "Bad_Name", "--tenant", TENANT, "--type", "t",
                           "--cron", "* * * * *"], {}, 2, "schedule name"),
    ("schedule-bad-overlap", [*SCHEDULE, "--cron", "* * * * *", "--overlap", "x"], {}, 2,
     "--overlap"),
    ("schedule-no-cron", SCHEDULE, {}, 2, "--cron"),
    ("schedule-show-missing", ["schedule", "show", "nope", "--tenant", TENANT], {}, 3,
     "not found"),
    ("schedule-delete-missing", ["schedule", "delete", "nope", "--tenant", TENANT], {}, 3,
     "not found"),
    ("tenant-create-invalid", ["tenant", "create", "Not_A_Name"], {}, 2, "tenant id"),
    ("tenant-create-zero", ["tenant", "create", "t2", "--max-concurrent", "0"], {}, 2,
     "--max-concurrent"),
    ("tenant-create-int32", ["tenant", "create", "t2", "--max-queued", "99999999999"], {}, 2,
     "--max-queued"),
    ("tenant-create-exists", ["tenant", "create", TENANT], {}, 2, "already exists"),
    ("tenant-update-weight", ["tenant", "update", TENANT, "--weight", "1001"], {}, 2,
     "--weight"),
    ("tenant-update-nothing", ["tenant", "update", TENANT], {}, 2, "nothing to update"),
    ("tenant-update-unknown", ["tenant", "update", "ghost", "--weight", "2"], {}, 3,
     "not found"),
    ("tenant-disable-invalid", ["tenant", "disable", "Not_A_Name"], {}, 2, "tenant id"),
    ("tenant-no-action", ["tenant"], {}, 2, "required"),
    ("jobs-list-page-0", ["jobs", "list", "--page", "0"], {}, 2, "--page"),
    ("jobs-list-page-huge", ["jobs", "list", "--page", "99999999999999999999"], {}, 2,
     "--page"),
    ("jobs-list-page-size", ["jobs", "list", "--page-size", "5000"], {}, 2, "--page-size"),
    ("jobs-list-status", ["jobs", "list", "--status", "lost"], {}, 2, "--status"),
    ("jobs-list-tenant", ["jobs", "list", "--tenant", "Not_A_Name"], {}, 2, "tenant id"),
    ("jobs-show-not-uuid", ["jobs", "show", "nope"], {}, 2, "not a job id"),
    ("jobs-show-missing", ["jobs", "show", MISSING_JOB], {}, 3, "not found"),
    ("jobs-retry-not-uuid", ["jobs", "retry", "nope"], {}, 2, "not a job id"),
    ("jobs-retry-missing", ["jobs", "retry", MISSING_JOB], {}, 3, "not found"),
    ("jobs-cancel-not-uuid", ["jobs", "cancel", "x"], {}, 2, "not a job id"),
    ("jobs-cancel-tenant", ["jobs", "cancel", MISSING_JOB, "--tenant", "A"], {}, 2,
     "tenant id"),
    ("worker-handlers", ["worker", "--handlers", "nonexistent.module"], {}, 2,
     "nonexistent.module"),
    ("worker-concurrency", ["worker", "--concurrency", "0"], {}, 2, "concurrency"),
    ("worker-env", ["worker"], {"JOBQUEUE_WORKER_CONCURRENCY": "abc"}, 2, "concurrency"),
    ("reaper-interval", ["reaper", "--once", "--interval-seconds", "0"], {}, 2,
     "interval_seconds"),
    ("api-port", ["api", "--port", "99999999"], {"JOBQUEUE_API_JWT_SECRET": "s" * 40}, 2,
     "port"),
    ("api-short-secret", ["api", "--port", "0"], {"JOBQUEUE_API_JWT_SECRET": "hunter2"}, 2,
     "32 bytes"),
    ("unknown-command", ["nosuchcommand"], {}, 2, "invalid choice"),
]
URL_CASES: list[tuple[str, list[str], str, int, str]] = [
    ("migrate-garbage-url", ["migrate"], "garbage", 2, "invalid database URL"),
    ("jobs-unreachable", ["jobs", "list"], "postgresql://u:hunter2@127.0.0.1:1/x", 5,
     "database unavailable"),
    ("submit-unreachable", SUBMIT, "postgresql://u:hunter2@127.0.0.1:1/x", 5,
     "database unavailable"),
]


def assert_one_clear_line(run: Run, code: int, phrase: str) -> None:
    assert run.returncode == code, run
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("jobqueue"), lines
    assert phrase in lines[0], lines
    assert "hunter2" not in run.stderr
    assert "DETAIL" not in run.stderr and "Failing row" not in run.stderr


@pytest.mark.parametrize(("argv", "env", "code", "phrase"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_bad_input_is_one_line_and_stores_nothing(
    cli_dsn: str, cli_pool: db.Pool, argv: list[str], env: dict[str, str], code: int,
    phrase: str,
) -> None:
    before = await stored(cli_pool)
    run = jobqueue(cli_dsn, *argv, env=env)
    assert_one_clear_line(run, code, phrase)
    assert run.stdout == ""
    assert await stored(cli_pool) == before


@pytest.mark.parametrize(("argv", "url", "code", "phrase"),
                         [c[1:] for c in URL_CASES], ids=[c[0] for c in URL_CASES])
def test_a_bad_database_url_is_one_line_without_the_password(
    argv: list[str], url: str, code: int, phrase: str
) -> None:
    assert_one_clear_line(jobqueue(url, *argv), code, phrase)


async def test_data_from_stdin_is_checked_too(cli_dsn: str, cli_pool: db.Pool) -> None:
    before = await stored(cli_pool)
    run = jobqueue(cli_dsn, *SUBMIT, "--data", "@-", stdin=nested(300))
    assert_one_clear_line(run, 2, f"{MAX_JSON_DEPTH} levels")
    assert await stored(cli_pool) == before


async def test_what_the_api_accepts_the_cli_accepts(
    cli_dsn: str, cli_pool: db.Pool, tmp_path: Path
) -> None:
    """The edges of the limits go through, as through the API."""
    data = tmp_path / "data.json"
    deepest = nested(MAX_JSON_DEPTH)
    data.write_text(deepest)
    run = jobqueue(cli_dsn, "submit", "a.b:c/d-e_f", "--tenant", TENANT, "--data", f"@{data}",
                   "--queue", "q.1:x-y_z", "--priority", "3", "--max-attempts", "1000",
                   "--timeout-seconds", "86400", "--idempotency-key", "k" * 255,
                   "--delay-seconds", "-5")
    assert run.returncode == 0, run.stderr
    job = json.loads(run.stdout)
    assert job["priority"] == "critical" and job["max_attempts"] == 1000
    shown = jobqueue(cli_dsn, "jobs", "show", job["id"])
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["data"] == json.loads(deepest)
    await cli_pool.execute("DELETE FROM jobs WHERE id = $1::uuid", job["id"])


async def test_show_answers_for_a_row_stored_deep_before_the_limit(
    cli_dsn: str, cli_pool: db.Pool
) -> None:
    job = await factories.submit(cli_pool, TenantId(TENANT))
    for depth in (300, 3000):
        await cli_pool.execute(
            "UPDATE jobs SET payload = $2::text::jsonb WHERE id = $1", job.id, nested(depth)
        )
        shown = jobqueue(cli_dsn, "jobs", "show", str(job.id))
        assert shown.returncode == 0, shown.stderr
        body = json.loads(shown.stdout)
        assert body["data"] is None and "levels deep" in body["omitted"]["data"]
        listed = jobqueue(cli_dsn, "jobs", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert str(job.id) in {j["id"] for j in json.loads(listed.stdout)["jobs"]}
    await cli_pool.execute("DELETE FROM jobs WHERE id = $1", job.id)
