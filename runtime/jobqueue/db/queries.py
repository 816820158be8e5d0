"""SQL lives in named .sql files next to this module, one per aggregate.

Each query starts with a `-- name: NAME` line; everything up to the next name
line is its text. Files are read once, at import of the module that uses them.

A query may instead be a variant of another of its file: its text is then
only comments and lines `-- variant of BASE: OLD -> NEW`, and it is BASE with
each OLD (found exactly once) replaced by NEW. For statements that must be
planned apart (a filter that drives an index read is a plain equality in
one, optional in the other) but are otherwise the same query.
"""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_VARIANT = re.compile(r"^--\s*variant of (\w+):\s*(.+?)\s+->\s+(.+?)\s*$")


def parse(text: str) -> dict[str, str]:
    parts = _NAME.split(text)
    # parts = [preamble, name1, body1, name2, body2, ...]
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"query {name!r} is defined twice")
        queries[name] = body.strip().rstrip(";")
    return {name: _resolve(name, body, queries) for name, body in queries.items()}


def _variant_lines(body: str) -> list[re.Match[str]]:
    return [m for line in body.splitlines() if (m := _VARIANT.match(line.strip()))]


def _resolve(name: str, body: str, queries: dict[str, str]) -> str:
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    variants = _variant_lines(body)
    if not variants:
        return body
    if any(not line.startswith("--") for line in lines):
        raise ValueError(f"query {name!r}: a variant holds no SQL of its own")
    bases = {m.group(1) for m in variants}
    base = bases.pop()
    if bases or base not in queries or _variant_lines(queries[base]):
        raise ValueError(f"query {name!r}: a variant of one plain query of its file")
    text = queries[base]
    for m in variants:
        old, new = m.group(2), m.group(3)
        if text.count(old) != 1:
            raise ValueError(f"query {name!r}: {old!r} is not found exactly once in {base!r}")
        text = text.replace(old, new)
    return text


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
