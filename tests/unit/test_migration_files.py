"""The two kinds of schema file keep to their kind (docs/design.md, "Schema
and migrations"): numbered files define no function or trigger, and
functions/ holds only statements that are safe to run again."""

from __future__ import annotations

import re

from jobqueue.db import migrations

# Statements start a line; a function body's lines are indented (and may
# build DDL in strings, as partition maintenance does).
_CODE = re.compile(r"^CREATE\s+(?:OR\s+REPLACE\s+)?(?:FUNCTION|TRIGGER)\b", re.I | re.M)
_CREATE = re.compile(r"^CREATE\s+(?!OR\s+REPLACE\s+(?:FUNCTION|TRIGGER)\b)", re.I | re.M)


def _sql(text: str) -> str:
    """The text without its comments (none of ours holds `--` in a string)."""
    return "\n".join(line.split("--", 1)[0] for line in text.splitlines())


def test_numbered_files_define_no_function_or_trigger() -> None:
    found = [m.name for m in migrations.available() if _CODE.search(_sql(m.sql))]
    assert found == [], "define them in db/functions/, once"


def test_definitions_only_create_or_replace_functions_and_triggers() -> None:
    files = migrations.definitions()
    assert files, "db/functions/ is empty"
    for d in files:
        assert _CODE.search(_sql(d.sql)), d.name
        assert not _CREATE.search(_sql(d.sql)), f"{d.name}: not safe to run again"
