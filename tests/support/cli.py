"""The admin CLI run in the test's own process, through `cli.main` (the
console script's entry point), in a thread of its own since each command
calls asyncio.run; a process per command would cost seconds each on a busy
machine."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from unittest import mock

from jobqueue import cli as jobqueue_cli


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def cli(dsn: str, *args: str, stdin: str | None = None) -> Result:
    out, err = io.StringIO(), io.StringIO()

    def call() -> int:
        try:
            return jobqueue_cli.main(list(args))
        except SystemExit as exc:  # argparse usage errors
            return int(exc.code or 0)

    env = {k: v for k, v in os.environ.items() if k != "JOBQUEUE_TENANT"}
    env["DATABASE_URL"] = dsn
    with (
        mock.patch.dict(os.environ, env, clear=True),
        mock.patch.object(sys, "stdin", io.StringIO(stdin or "")),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        ThreadPoolExecutor(1) as thread,
    ):
        code = thread.submit(call).result(timeout=60)
    return Result(code, out.getvalue(), err.getvalue())
