"""The one process runner of the tests: real `jobqueue` processes to start,
signal, restart, and read the logs of.

Each process logs JSON lines to a file of its own, so a test can assert on
what a process said ("lease lost", "became leader") after it is gone. The
kernel kills the children if the test process dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import asyncio
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

import httpx

REPO = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30.0


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Proc:
    """One `python -m jobqueue.cli ARGS` child; restartable under the same name.

    `clean_env` drops the JOBQUEUE_* and OTEL_* variables of the test run,
    so only `env` configures the child. With `stdout_apart`, stdout (e.g.
    console spans) goes to `out_path` and only stderr (the log) to `log_path`.
    `url` is where it answers (the API, or a worker's /metrics), if it does.
    """

    def __init__(
        self, name: str, args: Sequence[str], *, logdir: Path, dsn: str | None = None,
        env: dict[str, str] | None = None, prefix: Sequence[str] = (),
        clean_env: bool = False, stdout_apart: bool = False, url: str = "",
    ) -> None:
        self.name = name
        self.prefix = list(prefix)  # e.g. `ip netns exec NS`, which execs the rest
        self.args = list(args)
        self.dsn = dsn
        self.logdir = logdir
        self.extra_env = env or {}
        self.clean_env = clean_env
        self.stdout_apart = stdout_apart
        self.url = url
        self.metrics_url = ""  # where /metrics answers, if not at `url` (the API's own port)
        self.generation = 0
        self.popen: subprocess.Popen[bytes] | None = None
        self.exits: list[int] = []  # return codes of earlier generations

    @property
    def log_path(self) -> Path:
        return self.logdir / f"{self.name}.{self.generation}.log"

    @property
    def out_path(self) -> Path:
        return self.logdir / f"{self.name}.{self.generation}.out"

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.clean_env:
            env = {k: v for k, v in env.items() if not k.startswith(("JOBQUEUE_", "OTEL_"))}
        if self.dsn is not None:
            env["DATABASE_URL"] = self.dsn
        env["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        return {**env, **self.extra_env}

    def start(self) -> Proc:
        self.generation += 1
        with contextlib.ExitStack() as files:
            log = files.enter_context(self.log_path.open("wb"))
            out = files.enter_context(self.out_path.open("wb")) if self.stdout_apart else log
            self.popen = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", "jobqueue.cli", *self.args],
                stdin=subprocess.DEVNULL, stdout=out,
                stderr=log if self.stdout_apart else subprocess.STDOUT,
                env=self.environment(), cwd=REPO, preexec_fn=_die_with_parent,
            )
        return self

    async def serve(self, ready_path: str, timeout: float = STARTUP_SECONDS) -> Proc:
        """Start, then wait until GET `url + ready_path` answers 200."""
        self.start()
        assert self.popen is not None
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=self.url) as client:
            while True:
                if self.popen.poll() is not None:
                    raise RuntimeError(
                        f"{self.name} exited with {self.popen.returncode}:\n{self.text()}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(ready_path)).status_code == 200:
                        return self
                if time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"{self.name} did not start:\n{self.text()}")
                await asyncio.sleep(0.05)

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
        """SIGTERM (as Kubernetes stops a pod) and wait; SIGKILL if it does
        not stop in time, and raise."""
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

    def log_lines(self) -> list[dict[str, Any]]:
        """Every log line, parsed; a line that is not JSON fails the test."""
        out = []
        for line in self.text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise AssertionError(f"{self.name}: not a JSON log line: {line!r}") from exc
        return out

    def spans(self) -> list[dict[str, Any]]:
        """Console-exported spans (with `stdout_apart`)."""
        return [json.loads(line) for line in self.out_path.read_text().splitlines()
                if line.strip()]
