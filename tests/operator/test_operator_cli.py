"""`kopf run -m jobqueue_operator`, the way the chart starts it, as a real process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jobqueue import db
from jobqueue.db import tenants as tenant_rows
from jobqueue.embedded import free_port
from jobqueue.models import TenantId
from tests.conftest import PgServer, create_database, drop_database
from tests.envtest import ControlPlane
from tests.operator.harness import ROOT, Cluster, eventually

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def cli_db(pg_server: PgServer, template_db: str) -> AsyncIterator[str]:
    name = await create_database(pg_server, template_db)
    yield pg_server.dsn_for(name)
    await drop_database(pg_server, name)


async def test_kopf_run_reconciles_and_stops_cleanly_on_sigterm(
    control_plane: ControlPlane, cli_db: str, tmp_path: Path
) -> None:
    control_plane.apply_crds([ROOT / "crds"])
    cluster = Cluster(control_plane)
    namespace = cluster.namespace("jq-cli")
    port = free_port()
    env = {
        **os.environ,
        "KUBECONFIG": str(control_plane.kubeconfig_path),
        "DATABASE_URL": cli_db,
        "JOBQUEUE_OPERATOR_NAMESPACE": namespace,
        "JOBQUEUE_OPERATOR_STATUS_INTERVAL_SECONDS": "1",
    }
    kopf = Path(sys.executable).with_name("kopf")
    log = (tmp_path / "operator.log").open("w")
    proc = await asyncio.create_subprocess_exec(
        str(kopf), "run", "--all-namespaces", "--standalone",
        f"--liveness=http://127.0.0.1:{port}/healthz", "-m", "jobqueue_operator",
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    name = "cli-tenant"
    try:

        def live() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                return resp.status == 200

        await eventually(live, what="liveness endpoint", timeout=30)
        cluster.create(
            {
                "apiVersion": "jobqueue.dev/v1alpha1",
                "kind": "Tenant",
                "metadata": {"name": name},
                "spec": {"weight": 6},
            }
        )
        control_plane.kubectl("wait", "--for=condition=Ready", "--timeout=30s", f"tenant/{name}")
        pool = await db.create_pool(cli_db, min_size=1, max_size=2)
        try:
            assert (await tenant_rows.get(pool, tenant_id=TenantId(name))).weight == 6
            cluster.delete("Tenant", name)
            await eventually(lambda: not cluster.exists("Tenant", name), what="Tenant deleted")
            assert (await tenant_rows.get(pool, tenant_id=TenantId(name))).enabled is False
        finally:
            await pool.close()

        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
        stop_seconds = time.monotonic() - began
        assert stop_seconds < 15, stop_seconds
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()
        cluster.delete("Tenant", name)
        cluster.close()
    output = (tmp_path / "operator.log").read_text()
    assert "Traceback" not in output, output[-3000:]
