"""Fixtures for operator tests that need a real Kubernetes API (see tests/envtest.py)."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from jobqueue import db
from jobqueue.embedded import free_port
from tests.conftest import PgServer, create_database, drop_database
from tests.envtest import ControlPlane, MissingTestbinError, find_testbin
from tests.operator.harness import ROOT, Cluster, Running, operator_running

Helm = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    """A started etcd + kube-apiserver shared by the whole session.

    Fails (never skips) when the binaries are missing: run ``hack/testbin.sh``.
    Nothing global is changed: use ``control_plane.kubeconfig_path`` (or
    ``control_plane.env()`` for child processes) explicitly.
    """
    problem: str | None = None
    try:
        find_testbin()
    except MissingTestbinError as exc:
        problem = str(exc)
    if problem is not None:  # outside `except`: no chained traceback noise
        pytest.fail(problem, pytrace=False)
    with ControlPlane() as cp:
        yield cp


@pytest.fixture(scope="module")
def cluster(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """The test API with our CRDs, plus any a module names in `EXTRA_CRDS` (KEDA's, ...)."""
    control_plane.apply_crds([ROOT / "crds", *getattr(request.module, "EXTRA_CRDS", ())])
    c = Cluster(control_plane)
    yield c
    c.close()


@pytest.fixture(scope="module")
async def op_database(pg_server: PgServer, template_db: str) -> AsyncIterator[str]:
    """A database of the module's own for the operator it runs."""
    name = await create_database(pg_server, template_db)
    yield pg_server.dsn_for(name)
    await drop_database(pg_server, name)


@pytest.fixture(scope="module")
def running(control_plane: ControlPlane, cluster: Cluster, op_database: str) -> Iterator[Running]:
    """One operator per module, on the module's database, metrics on a free port
    (a module with other needs defines its own)."""
    with operator_running(control_plane, cluster, op_database, metrics_port=free_port()) as r:
        yield r


@pytest.fixture
async def pool(running: Running) -> AsyncIterator[db.Pool]:
    """A pool on the database of the module's `running` operator."""
    p = await db.create_pool(running.dsn, min_size=1, max_size=4)
    yield p
    await p.close()


@pytest.fixture(scope="module")
def helm(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """The testbin's helm with a throwaway home, so no user config leaks in."""
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        "HOME": str(home),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
        "PATH": "/usr/bin:/bin",
    }

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(control_plane.bin_dir / "helm"), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result

    return run
