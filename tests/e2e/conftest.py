"""One cluster for the e2e tests, whichever kind this machine can run.

- A Docker engine and `kind` on PATH: a kind cluster from pytest-kind
  (`kind_cluster`), images loaded with `load_docker_image`.
- Otherwise, as root on Linux with `hack/cluster.sh`: the local single-node
  cluster (`hack/cluster.sh up`, torn down at the end of the session unless
  JOBQUEUE_KEEP_CLUSTER=1 or it was already up), images built by
  `hack/image.sh` and imported into its containerd.
- Neither: every e2e test is skipped with one line saying why.

Both end up as an `E2ECluster`: a kubeconfig, kubectl and helm, the node's
address (NodePorts answer there) and a folder for artifacts
(JOBQUEUE_E2E_ARTIFACTS, default /tmp/jobqueue-e2e).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.envtest import testbin_dir

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ("jobqueue", "postgres", "e2e")
TAGS = {"jobqueue": "jobqueue:dev", "postgres": "jobqueue-postgres:dev", "e2e": "jobqueue-e2e:dev"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs a cluster that runs pods (tests/e2e)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


def log(message: str) -> None:
    print(f"[e2e {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class E2ECluster:
    flavour: str  # "local" (hack/cluster.sh) or "kind"
    kubeconfig: Path
    node_ip: str
    artifacts: Path
    bin_dir: Path = field(default_factory=testbin_dir)

    def env(self) -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def run(
        self,
        tool: str,
        *args: str,
        check: bool = True,
        timeout: float = 120,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        exe = self.bin_dir / tool
        argv = [str(exe if exe.exists() else tool), *args]
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env(),
            input=input,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{tool} {' '.join(args)} -> {result.returncode}\n{result.stderr}")
        return result

    def kubectl(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", *args, **kw)

    def helm(self, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        kw.setdefault("timeout", 600)
        return self.run("helm", *args, **kw)

    def get(self, *args: str) -> Any:
        """`kubectl get ARGS -o json`, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def artifact(self, name: str, text: str, *, append: bool = False) -> None:
        with (self.artifacts / name).open("a" if append else "w") as f:
            f.write(text)


def _docker_works() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _image_sh(*args: str, timeout: float = 1800) -> list[str]:
    started = time.monotonic()
    result = subprocess.run(
        [str(ROOT / "hack" / "image.sh"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"hack/image.sh {' '.join(args)} failed:\n{result.stderr[-4000:]}")
    log(f"hack/image.sh {' '.join(args)}: {time.monotonic() - started:.0f} s")
    return result.stdout.split()


def _node_ip(kubeconfig: Path) -> str:
    kubectl = testbin_dir() / "kubectl"
    out = subprocess.run(
        [str(kubectl if kubectl.exists() else "kubectl"), "--kubeconfig", str(kubeconfig),
         "get", "nodes", "-o", "json"],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    for address in json.loads(out)["items"][0]["status"]["addresses"]:
        if address["type"] == "InternalIP":
            return str(address["address"])
    raise AssertionError("the node has no InternalIP")


def _local_cluster_problem() -> str | None:
    if not (ROOT / "hack" / "cluster.sh").exists():
        return "hack/cluster.sh is missing"
    if sys.platform != "linux" or os.geteuid() != 0:
        return "the local cluster (hack/cluster.sh) needs root on Linux"
    return None


def _cluster_sh(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "hack" / "cluster.sh"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def e2e_cluster(request: pytest.FixtureRequest) -> Iterator[E2ECluster]:
    artifacts = Path(os.environ.get("JOBQUEUE_E2E_ARTIFACTS", "/tmp/jobqueue-e2e"))
    artifacts.mkdir(parents=True, exist_ok=True)
    if _docker_works() and shutil.which("kind"):
        try:
            kind = request.getfixturevalue("kind_cluster")
        except pytest.FixtureLookupError:
            pytest.skip("e2e: Docker and kind are here but pytest-kind is not installed")
        _image_sh("build", *IMAGES)
        for name in IMAGES:
            kind.load_docker_image(TAGS[name])
        kubeconfig = Path(kind.kubeconfig_path)
        yield E2ECluster("kind", kubeconfig, _node_ip(kubeconfig), artifacts)
        return

    problem = _local_cluster_problem()
    if problem:
        pytest.skip(f"e2e: no Docker engine with kind, and {problem}")
    was_up = _cluster_sh("status", timeout=60).returncode == 0
    started = time.monotonic()
    up = _cluster_sh("up")
    if up.returncode != 0:
        pytest.fail(f"hack/cluster.sh up failed:\n{up.stdout[-2000:]}\n{up.stderr[-4000:]}")
    log(f"hack/cluster.sh up: {time.monotonic() - started:.0f} s (was up: {was_up})")
    kubeconfig = Path(_cluster_sh("kubeconfig", timeout=60).stdout.strip().splitlines()[-1])
    try:
        _image_sh("build", "--load", *IMAGES)
        yield E2ECluster("local", kubeconfig, _node_ip(kubeconfig), artifacts)
    finally:
        if not was_up and os.environ.get("JOBQUEUE_KEEP_CLUSTER") != "1":
            started = time.monotonic()
            down = _cluster_sh("down", timeout=600)
            log(f"hack/cluster.sh down: {time.monotonic() - started:.0f} s rc={down.returncode}")
