"""`jobqueue submit --unique*` as a real process against real PostgreSQL."""

from __future__ import annotations

import json

from jobqueue import db
from tests import factories
from tests.integration.test_cli_errors import jobqueue


async def test_a_duplicate_prints_the_existing_job_marked_duplicate(
    dsn: str, pool: db.Pool
) -> None:
    await factories.tenant(pool, "acme")
    argv = ["submit", "report", "--tenant", "acme", "--unique-keys", "account",
            "--unique-period-seconds", "600"]
    first = jobqueue(dsn, *argv, "--data", '{"account": 1, "n": 1}')
    second = jobqueue(dsn, *argv, "--data", '{"account": 1, "n": 2}')
    other = jobqueue(dsn, *argv, "--data", '{"account": 2}')
    assert first.returncode == second.returncode == other.returncode == 0, (first, second)
    a, b, c = (json.loads(r.stdout) for r in (first, second, other))
    assert (a["duplicate"], b["duplicate"], c["duplicate"]) == (False, True, False)
    assert b["id"] == a["id"] != c["id"]
    assert await pool.fetchval("SELECT count(*) FROM jobs") == 2
