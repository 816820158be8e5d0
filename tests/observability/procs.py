"""`jobqueue` processes as the observability tests run them, and scraping them.

Each process (tests.support.procs.Proc) writes stdout and stderr to files
of their own: stderr holds the JSON log lines, stdout the spans when
OTEL_TRACES_EXPORTER=console.
"""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from jobqueue.embedded import free_port
from tests.support.procs import Proc

# Spans leave a batching processor within this many milliseconds.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "50"}
CONSOLE_TRACES = {"OTEL_TRACES_EXPORTER": "console", **FAST_EXPORT}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def base_env(dsn: str, **extra: str) -> dict[str, str]:
    """What configures a child here: the database, JSON logs and `extra`
    (the test run's own JOBQUEUE_* and OTEL_* variables are left out)."""
    return {"DATABASE_URL": dsn, "JOBQUEUE_LOG_FORMAT": "json", **extra}


async def spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path,
                url: str, ready_path: str) -> Proc:
    proc = Proc(name, args, logdir=log_dir, env=env, clean_env=True, stdout_apart=True,
                url=url)
    return await proc.serve(ready_path)


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
