"""docs/schema.sql is generated (hack/gen_schema.py) and must be current."""

from __future__ import annotations

from pathlib import Path

from jobqueue import db
from jobqueue.db import schema_text

DOC = Path(__file__).resolve().parents[3] / "docs" / "schema.sql"


async def test_docs_schema_sql_is_what_the_migrations_make(dsn: str) -> None:
    conn = await db.connect(dsn)
    try:
        text = await schema_text.render(conn)
    finally:
        await conn.close()
    assert "CREATE TABLE jobs (" in text and "CREATE TRIGGER jobs_changed_insert" in text
    # Every function is named with the file that defines it.
    assert "no file of functions/" not in text
    assert DOC.read_text() == text, "docs/schema.sql is stale: run python hack/gen_schema.py"
