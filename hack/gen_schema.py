#!/usr/bin/env python
"""Write docs/schema.sql: the whole schema in one file, read from a database
that this code's migrations made (jobqueue.db.schema_text).

    python hack/gen_schema.py          # (re)write docs/schema.sql
    python hack/gen_schema.py --check  # exit 1 if docs/schema.sql is stale

The numbered files in runtime/jobqueue/db/versions/ and the definitions in
runtime/jobqueue/db/functions/ are the source; this file is for reading.
Runs a throwaway embedded PostgreSQL, or uses DATABASE_URL's server (it
makes and drops a database of its own there).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import benchdb  # hack/benchdb.py, next to this file
from jobqueue import db
from jobqueue.db import schema_text

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "schema.sql"


async def render() -> str:
    with benchdb.server() as server_dsn:
        dsn = await benchdb.fresh_db(server_dsn, prefix="schema")
        try:
            conn = await db.connect(dsn)
            try:
                return await schema_text.render(conn)
            finally:
                await conn.close()
        finally:
            await benchdb.drop_db(server_dsn, dsn)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    text = asyncio.run(render())
    current = TARGET.read_text() if TARGET.exists() else None
    if args.check:
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is stale: run python hack/gen_schema.py")
            return 1
        return 0
    if current != text:
        TARGET.write_text(text)
        print(f"wrote {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
