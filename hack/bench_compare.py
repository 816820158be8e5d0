"""`hack/bench.py --compare pgqueuer`: jobqueue and pgqueuer side by side on
one PostgreSQL server, in one run, interleaved (round after round, every
scenario, each system in turn), medians of the rounds, and each ratio.

Every system runs as processes of its own: producers through
`hack/bench_enqueue.py`, workers as `jobqueue worker` and pgqueuer's
`pgq run` (its factory is `hack/bench_pgq.py`). `--before PATH` adds the
jobqueue of another source tree (e.g. `git worktree add /tmp/old <commit>`),
run from its own code and migrations, as a third column.

Scenarios (20,000 no-op jobs unless --jobs):
- enqueue: batch enqueue, 1,000 jobs a statement: jobs/s, producer CPU and
  PostgreSQL CPU per 1,000 jobs;
- drain-best-1 / drain-best-2: one or two worker processes at their best
  settings (jobqueue --concurrency 100; pgqueuer --batch-size 100), drain-default:
  one process, settings as shipped. Rate from first to last completion on
  the database clock; CPU of the workers and of the whole server from the
  moment the backlog is released (start-up excluded). The backlog is held
  back until the workers are up: jobqueue's tenant is disabled, pgqueuer's
  table is locked (its workers wait on the lock);
- latency: one job every 10 ms, one idle worker (default settings):
  enqueue-to-start p50/p99, both timestamps from the database clock.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

import benchdb  # hack/benchdb.py, next to this file

HACK = Path(__file__).resolve().parent
BEST_JOBQUEUE = ["--concurrency", "100"]
BEST_PGQUEUER = ["--batch-size", "100"]


@dataclass(frozen=True)
class System:
    name: str
    kind: str  # "jobqueue" or "pgqueuer"
    tree: Path | None = None  # a jobqueue source tree other than this one

    def env(self, dsn: str) -> dict[str, str]:
        env = {**os.environ, "DATABASE_URL": dsn, "PGDSN": dsn, "JOBQUEUE_LOG_LEVEL": "WARNING"}
        paths = [str(self.tree / "runtime")] if self.tree else []
        inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join([*paths, *inherited, str(HACK)])
        return env


@dataclass
class Result:
    values: dict[str, float] = field(default_factory=dict)


async def _sql(dsn: str, query: str, *args: object) -> object:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def prepare(server_dsn: str, system: System, *, disabled: bool) -> str:
    name = f"cmp_{system.name}_{uuid.uuid4().hex[:8]}"
    await _sql(server_dsn, f"CREATE DATABASE {name}")
    dsn = server_dsn.rsplit("/", 1)[0] + "/" + name
    install(system, dsn, disabled=disabled)
    return dsn


def install(system: System, dsn: str, *, disabled: bool) -> None:
    """The system's schema (from its own tree) and, for jobqueue, the bench
    tenant with no concurrency cap, disabled when the backlog must wait."""
    env = system.env(dsn)
    if system.kind == "pgqueuer":
        subprocess.run([sys.executable, "-m", "pgqueuer", "install"], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        return
    code = (
        "import asyncio\n"
        "from jobqueue import db\n"
        "from jobqueue.db import migrations, tenants\n"
        "from jobqueue.models import TenantId, TenantQuotas\n"
        "async def go(dsn):\n"
        "    conn = await db.connect(dsn)\n"
        "    await migrations.migrate(conn)\n"
        "    await tenants.upsert(conn, tenant_id=TenantId('bench'), quotas=TenantQuotas(\n"
        f"        max_concurrent=1_000_000, max_queued=100_000_000, enabled={not disabled}))\n"
        "    await conn.close()\n"
        f"asyncio.run(go({dsn!r}))\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


async def drop(server_dsn: str, dsn: str) -> None:
    await _sql(server_dsn, f"DROP DATABASE IF EXISTS {dsn.rsplit('/', 1)[1]} WITH (FORCE)")


def enqueue(system: System, dsn: str, n: int, *extra: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(HACK / "bench_enqueue.py"), system.kind, dsn, str(n), *extra],
        env=system.env(dsn), check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def start_workers(system: System, dsn: str, n: int, settings: list[str],
                  env: dict[str, str] | None = None) -> list[subprocess.Popen[bytes]]:
    if system.kind == "jobqueue":
        cmd = [sys.executable, "-m", "jobqueue.cli", "worker", *settings]
    else:
        cmd = [sys.executable, "-m", "pgqueuer", "run", "bench_pgq:create_pgqueuer",
               *settings]
    return [subprocess.Popen(cmd, env=env or system.env(dsn), cwd=HACK,
                             stdin=subprocess.DEVNULL) for _ in range(n)]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


async def wait_ready(conn: asyncpg.Connection, system: System, n: int,
                     procs: list[subprocess.Popen[bytes]], *, held: bool) -> None:
    if system.kind == "jobqueue":
        query = ("SELECT count(DISTINCT application_name) FROM pg_stat_activity"
                 " WHERE datname = current_database()"
                 " AND application_name LIKE 'jobqueue-worker %'")
    else:
        query = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                 " AND application_name = 'pgq-bench'"
                 + (" AND wait_event_type = 'Lock'" if held else ""))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a {system.name} worker exited during start-up")
        if await conn.fetchval(query) >= n:
            await asyncio.sleep(1.0)  # past the first (empty) lease and LISTEN
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{system.name} workers were not ready within 90 s")


async def completions(conn: asyncpg.Connection, system: System) -> asyncpg.Record:
    if system.kind == "jobqueue":
        return await conn.fetchrow(
            "SELECT count(*) AS n, min(finished_at) AS first, max(finished_at) AS last"
            " FROM jobs WHERE status = 'succeeded'")
    return await conn.fetchrow(
        "SELECT count(*) AS n, min(created) AS first, max(created) AS last"
        " FROM pgqueuer_log WHERE status = 'successful'")


async def wait_done(conn: asyncpg.Connection, system: System, n: int,
                    procs: list[subprocess.Popen[bytes]]) -> asyncpg.Record:
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        if any(p.poll() is not None for p in procs):
            raise RuntimeError(f"a {system.name} worker died")
        if system.kind == "jobqueue":
            busy = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM jobs WHERE status IN"
                                       " ('queued', 'leased', 'running'))")
        else:
            busy = await conn.fetchval("SELECT count(*) < $1 FROM pgqueuer_log"
                                       " WHERE status = 'successful'", n)
        if not busy:
            return await completions(conn, system)
    raise RuntimeError(f"{system.name} did not finish within 15 minutes")


async def run_enqueue(server_dsn: str, system: System, n: int) -> Result:
    dsn = await prepare(server_dsn, system, disabled=True)
    try:
        postmaster = await benchdb.find_postmaster(dsn)
        s0 = benchdb.server_cpu_seconds(postmaster)
        got = enqueue(system, dsn, n)
        s1 = benchdb.server_cpu_seconds(postmaster)
    finally:
        await drop(server_dsn, dsn)
    r = Result({"jobs/s": got["jobs_per_second"],
                "producer CPU ms/1000": got["cpu_seconds"] * 1e6 / n})
    if s0 is not None and s1 is not None:
        r.values["PostgreSQL CPU ms/1000"] = (s1 - s0) * 1e6 / n
    return r


async def run_drain(server_dsn: str, system: System, n: int, procs_n: int,
                    settings: list[str]) -> Result:
    dsn = await prepare(server_dsn, system, disabled=True)
    conn = await asyncpg.connect(dsn)
    procs: list[subprocess.Popen[bytes]] = []
    hold = None
    try:
        enqueue(system, dsn, n)
        await conn.execute("VACUUM ANALYZE")
        if system.kind == "pgqueuer":
            hold = await asyncpg.connect(dsn)
            await hold.execute("BEGIN; LOCK TABLE pgqueuer IN ACCESS EXCLUSIVE MODE")
        procs = start_workers(system, dsn, procs_n, settings)
        await wait_ready(conn, system, procs_n, procs, held=True)
        postmaster = await benchdb.find_postmaster(dsn)
        pids = [p.pid for p in procs]
        w0, s0 = benchdb.cpu_seconds(*pids), benchdb.server_cpu_seconds(postmaster)
        if hold is not None:
            await hold.execute("COMMIT")
        else:
            await conn.execute("UPDATE tenants SET enabled = true")
        done = await wait_done(conn, system, n, procs)
        w1, s1 = benchdb.cpu_seconds(*pids), benchdb.server_cpu_seconds(postmaster)
    finally:
        stop(procs)
        if hold is not None:
            await hold.close()
        await conn.close()
        await drop(server_dsn, dsn)
    if done["n"] != n:
        raise RuntimeError(f"{system.name}: {done['n']} of {n} jobs succeeded")
    r = Result({"jobs/s": (n - 1) / (done["last"] - done["first"]).total_seconds(),
                "worker CPU ms/1000": (w1 - w0) * 1e6 / n})
    if s0 is not None and s1 is not None:
        r.values["PostgreSQL CPU ms/1000"] = (s1 - s0) * 1e6 / n
    return r


async def run_latency(server_dsn: str, system: System, n: int = 1000) -> Result:
    dsn = await prepare(server_dsn, system, disabled=False)
    conn = await asyncpg.connect(dsn)
    lat_file = Path(f"/tmp/bench-pgq-latency-{uuid.uuid4().hex[:8]}")
    env = {**system.env(dsn), "BENCH_PGQ_LATENCY_FILE": str(lat_file)}
    procs = start_workers(system, dsn, 1, [], env=env)
    try:
        await wait_ready(conn, system, 1, procs, held=False)
        enqueue(system, dsn, n, "--single", "10")
        await wait_done(conn, system, n, procs)
        if system.kind == "jobqueue":
            ms = [r[0] for r in await conn.fetch(
                "SELECT extract(epoch FROM started_at - created_at) * 1000 FROM jobs")]
        else:
            await asyncio.sleep(0.5)
            ms = read_latencies(lat_file)
    finally:
        stop(procs)
        await conn.close()
        await drop(server_dsn, dsn)
    q = statistics.quantiles([float(m) for m in ms], n=100, method="inclusive")
    return Result({"p50 ms": q[49], "p99 ms": q[98]})


def read_latencies(path: Path) -> list[float]:
    try:
        return [float(x) for x in path.read_text().split()]
    finally:
        path.unlink(missing_ok=True)


SCENARIOS = ("enqueue", "drain-best-1", "drain-best-2", "drain-default", "latency")


async def scenario(name: str, server_dsn: str, system: System, n: int) -> Result:
    best = BEST_JOBQUEUE if system.kind == "jobqueue" else BEST_PGQUEUER
    if name == "enqueue":
        return await run_enqueue(server_dsn, system, n)
    if name == "drain-best-1":
        return await run_drain(server_dsn, system, n, 1, best)
    if name == "drain-best-2":
        return await run_drain(server_dsn, system, n, 2, best)
    if name == "drain-default":
        return await run_drain(server_dsn, system, n, 1, [])
    return await run_latency(server_dsn, system)


LOWER_IS_BETTER = ("CPU", "ms")


def table(results: dict[tuple[str, str], list[Result]], systems: list[System],
          scenarios: list[str]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for sc in scenarios:
        keys = list(results[(sc, systems[0].name)][0].values)
        for key in keys:
            row: dict[str, object] = {"scenario": sc, "measure": key}
            for s in systems:
                runs = [r.values[key] for r in results[(sc, s.name)] if key in r.values]
                row[s.name] = statistics.median(runs) if runs else None
                row[f"{s.name} runs"] = runs
            mine, theirs = row.get("jobqueue"), row.get("pgqueuer")
            if isinstance(mine, float) and isinstance(theirs, float) and theirs:
                lower = any(w in key for w in LOWER_IS_BETTER)
                # >1 always means jobqueue is better.
                row["ratio"] = (theirs / mine) if lower else (mine / theirs)
            rows.append(row)
    return rows


def print_rows(rows: list[dict[str, object]], systems: list[System], load: list[str]) -> None:
    names = [s.name for s in systems]
    print(f"\n{'scenario':<15} {'measure':<24} " + " ".join(f"{n:>12}" for n in names)
          + f" {'ratio':>7}   (ratio > 1: jobqueue better)")
    for r in rows:
        cells = " ".join(f"{r[n]:>12,.1f}" if isinstance(r[n], float) else f"{'-':>12}"
                         for n in names)
        ratio = f"{r['ratio']:>6.2f}x" if "ratio" in r else f"{'':>7}"
        print(f"{r['scenario']:<15} {r['measure']:<24} {cells} {ratio}")
    print("load (uptime) per round: " + " | ".join(load))


async def compare(server_dsn: str, *, n: int, rounds: int, only: list[str],
                  before: Path | None, as_json: bool) -> None:
    systems = [System("jobqueue", "jobqueue")]
    if before is not None:
        systems.insert(0, System("before", "jobqueue", before))
    systems.append(System("pgqueuer", "pgqueuer"))
    results: dict[tuple[str, str], list[Result]] = {}
    load = []
    for k in range(rounds):
        load.append(os.getloadavg().__str__())
        for sc in only:
            for s in systems if k % 2 == 0 else reversed(systems):
                print(f"round {k + 1}/{rounds}: {sc} {s.name}", file=sys.stderr, flush=True)
                results.setdefault((sc, s.name), []).append(await scenario(sc, server_dsn, s, n))
    rows = table(results, systems, only)
    if as_json:
        print(json.dumps({"jobs": n, "rounds": rounds, "load": load, "rows": rows}, indent=1,
                         default=str))
    else:
        print_rows(rows, systems, load)
