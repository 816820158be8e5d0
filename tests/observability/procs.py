"""Real `jobqueue` processes for the observability tests, and scraping them.

Each process writes stdout and stderr to files of their own: stderr holds
the JSON log lines, stdout the spans when OTEL_TRACES_EXPORTER=console.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from jobqueue.embedded import free_port

REPO = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 30.0
# Spans leave a batching processor within this many milliseconds.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "50"}
CONSOLE_TRACES = {"OTEL_TRACES_EXPORTER": "console", **FAST_EXPORT}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    out: Path
    err: Path
    url: str  # where the process answers: the API, or a worker's /metrics
    metrics_url: str = ""  # where /metrics answers, if not at `url` (the API's port of its own)

    def stop(self) -> int:
        """SIGTERM, as Kubernetes stops a pod; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    def log_lines(self) -> list[dict[str, object]]:
        """Every stderr line, parsed; a line that is not JSON fails the test."""
        out = []
        for line in self.stderr().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise AssertionError(f"{self.name}: not a JSON log line: {line!r}") from exc
        return out

    def spans(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]


def base_env(dsn: str, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("JOBQUEUE_", "OTEL_"))
    }
    env.update(DATABASE_URL=dsn, JOBQUEUE_LOG_FORMAT="json", PYTHONPATH=str(REPO))
    env.update(extra)
    return env


def _popen(name: str, args: list[str], env: dict[str, str], log_dir: Path, url: str) -> Proc:
    out, err = log_dir / f"{name}.out", log_dir / f"{name}.err"
    with out.open("wb") as o, err.open("wb") as e:
        process = subprocess.Popen(
            [sys.executable, "-m", "jobqueue.cli", *args], env=env, cwd=REPO, stdout=o, stderr=e
        )
    return Proc(name, process, out, err, url)


async def spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path,
                url: str, ready_path: str) -> Proc:
    proc = _popen(name, args, env, log_dir, url)
    process = proc.process
    deadline = time.monotonic() + STARTUP_SECONDS
    async with httpx.AsyncClient(base_url=url) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{proc.stderr()}")
            with contextlib.suppress(httpx.TransportError):
                if (await client.get(ready_path)).status_code == 200:
                    return proc
            if time.monotonic() > deadline:
                proc.stop()
                raise RuntimeError(f"{name} did not start:\n{proc.stderr()}")
            await asyncio.sleep(0.05)


async def start_api(env: dict[str, str], log_dir: Path) -> Proc:
    port, metrics_port = free_port(), free_port()
    env = {**env, "JOBQUEUE_API_PORT": str(port), "JOBQUEUE_API_METRICS_PORT": str(metrics_port)}
    proc = await spawn("api", ["api"], env, log_dir, f"http://127.0.0.1:{port}", "/healthz")
    proc.metrics_url = f"http://127.0.0.1:{metrics_port}"
    return proc


async def start_worker(env: dict[str, str], log_dir: Path, *extra: str,
                       name: str = "worker") -> Proc:
    port = free_port()
    args = ["worker", "--metrics-port", str(port), "--poll-seconds", "0.2", *extra]
    return await spawn(name, args, env, log_dir, f"http://127.0.0.1:{port}", "/metrics")


async def start_reaper(env: dict[str, str], log_dir: Path) -> Proc:
    port = free_port()
    args = ["reaper", "--leader-election", "none", "--interval-seconds", "0.2",
            "--metrics-port", str(port)]
    return await spawn("reaper", args, env, log_dir, f"http://127.0.0.1:{port}", "/metrics")


async def scrape(proc: Proc) -> tuple[str, Samples]:
    async with httpx.AsyncClient(base_url=proc.metrics_url or proc.url, timeout=10) as client:
        r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return r.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; an absent series counts as 0 (not yet touched, or cleared)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def present(samples: Samples, name: str, **labels: str) -> bool:
    return (name, frozenset(labels.items())) in samples


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 20.0,
                     what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        await asyncio.sleep(0.1)
