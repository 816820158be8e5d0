"""Real `jobqueue` processes for tests: start, signal, restart, read logs.

Each process logs JSON lines to a file of its own, so a test can assert on
what a process said ("lease lost", "became leader") after it is gone. The
kernel kills the children if the test process dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Proc:
    """One `python -m jobqueue.cli ARGS` child; restartable under the same name."""

    def __init__(
        self, name: str, args: Sequence[str], *, dsn: str, logdir: Path,
        env: dict[str, str] | None = None, prefix: Sequence[str] = (),
    ) -> None:
        self.name = name
        self.prefix = list(prefix)  # e.g. `ip netns exec NS`, which execs the rest
        self.args = list(args)
        self.dsn = dsn
        self.logdir = logdir
        self.extra_env = env or {}
        self.generation = 0
        self.popen: subprocess.Popen[bytes] | None = None
        self.exits: list[int] = []  # return codes of earlier generations

    @property
    def log_path(self) -> Path:
        return self.logdir / f"{self.name}.{self.generation}.log"

    def start(self) -> Proc:
        self.generation += 1
        env = {
            **os.environ,
            "DATABASE_URL": self.dsn,
            "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }
        with self.log_path.open("wb") as out:
            self.popen = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", "jobqueue.cli", *self.args],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=env, cwd=REPO, preexec_fn=_die_with_parent,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        assert self.popen is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.popen.pid, sig)

    def kill(self) -> int:
        """SIGKILL and reap; returns the exit code (-9)."""
        self.signal(signal.SIGKILL)
        return self.wait(10)

    def wait(self, timeout: float) -> int:
        assert self.popen is not None
        code = self.popen.wait(timeout)
        self.exits.append(code)
        return code

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; SIGKILL if it does not stop in time."""
        if not self.alive():
            assert self.popen is not None
            code = self.popen.returncode
            return code
        self.signal(signal.SIGCONT)  # a stopped process cannot handle SIGTERM
        self.signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def text(self, generation: int | None = None) -> str:
        gens = [generation] if generation else range(1, self.generation + 1)
        return "".join(
            (self.logdir / f"{self.name}.{g}.log").read_text(errors="replace") for g in gens
        )

    def events(self, generation: int | None = None) -> Iterator[dict[str, Any]]:
        """Parsed JSON log lines (other lines, e.g. tracebacks, are skipped)."""
        for line in self.text(generation).splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    yield json.loads(line)


def wait_until(check: Any, timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


async def until(check: Any, timeout: float, what: str, interval: float = 0.02) -> Any:
    """Await `check()` (sync or async) until truthy; its value, or AssertionError."""
    import asyncio
    import inspect

    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)
