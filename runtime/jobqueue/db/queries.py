"""SQL lives in named .sql files next to this module, one per aggregate.

Each query starts with a `-- name: NAME` line; everything up to the next name
line is its text. Files are read once, at import of the module that uses them.
"""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    parts = _NAME.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body.strip().rstrip(";")
    return queries


def load(aggregate: str) -> dict[str, str]:
    text = resources.files("jobqueue.db").joinpath("sql", f"{aggregate}.sql").read_text()
    return parse(text)


def all_queries() -> dict[str, str]:
    """Every query of every aggregate, keyed `aggregate.name` (for tests)."""
    out: dict[str, str] = {}
    for entry in resources.files("jobqueue.db").joinpath("sql").iterdir():
        if entry.name.endswith(".sql"):
            aggregate = entry.name.removesuffix(".sql")
            for name, sql in parse(entry.read_text()).items():
                out[f"{aggregate}.{name}"] = sql
    return out
