"""Helpers for operator tests: the operator in a thread and the clusters it runs on.

Not a conftest: test modules import what they use and build their own
fixtures from it (tests/operator/conftest.py belongs to the envtest).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import kopf
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

import jobqueue_operator  # noqa: F401  (registers the handlers)
from jobqueue_operator.settings import OperatorSettings
from tests.envtest import ControlPlane
from tests.support import wait
from tests.support.proxy import TcpProxy

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION = "jobqueue.dev", "v1alpha1"
T = TypeVar("T")


async def eventually(
    probe: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 20.0,
    what: str = "condition",
) -> T:
    """`tests.support.wait.eventually` for cluster state: a probe that fails
    because the object is not there (yet) is a "not yet"."""
    return await wait.eventually(probe, timeout=timeout, interval=0.1, what=what,
                                 ignore=(AssertionError, ApiException, LookupError, OSError))


@contextlib.contextmanager
def kubeconfig_env(path: Path) -> Iterator[None]:
    """Point KUBECONFIG at the test cluster while the in-process operator logs in."""
    saved = os.environ.get("KUBECONFIG")
    os.environ["KUBECONFIG"] = str(path)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = saved


class OperatorThread:
    """The real operator (every handler of `jobqueue_operator`) on a loop of its own."""

    def __init__(self, *, dsn: str | None, settings: OperatorSettings) -> None:
        self.memo = kopf.Memo(operator_settings=settings, dsn=dsn)
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="kopf-operator", daemon=True)
        self.startup_seconds = 0.0

    def _main(self) -> None:
        try:
            asyncio.run(
                kopf.operator(
                    clusterwide=True,
                    standalone=True,
                    memo=self.memo,
                    ready_flag=self._ready,
                    stop_flag=self._stop,
                )
            )
        except BaseException as exc:
            self._error = exc

    def start(self, timeout: float = 30.0) -> OperatorThread:
        began = time.monotonic()
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"operator not ready within {timeout}s: {self._error!r}")
        self.startup_seconds = time.monotonic() - began
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"operator did not stop within {timeout}s")
        if self._error is not None:
            raise self._error


@dataclass
class Running:
    op: OperatorThread
    proxy: TcpProxy
    namespace: str  # the operator's: API-key Secrets live here
    dsn: str  # the operator's database, direct (the operator goes through `proxy`)
    metrics_url: str | None = None  # http://127.0.0.1:<port> of the external-metrics server


@contextlib.contextmanager
def operator_running(
    control_plane: ControlPlane,
    cluster: Cluster,
    dsn: str,
    *,
    namespace: str | None = None,
    kubeconfig: Path | None = None,
    metrics_port: int | None = None,
) -> Iterator[Running]:
    """The operator on `dsn` (through a proxy), fast status ticks; cleans up after itself.

    `kubeconfig` lets it run as someone other than the envtest admin.
    """
    namespace = namespace or cluster.namespace("jq-operator")
    proxy = TcpProxy.to(dsn)
    settings = OperatorSettings(
        namespace=namespace,
        status_interval_seconds=1,
        retry_seconds=1,
        db_timeout_seconds=3,
        watch_server_timeout_seconds=30,
        metrics_port=metrics_port,
        # Plain HTTP here; tests/operator/test_metrics_auth.py covers the authenticated server.
        metrics_authenticate=False,
    )
    with kubeconfig_env(kubeconfig or control_plane.kubeconfig_path):
        op = OperatorThread(dsn=proxy.dsn_via(dsn), settings=settings).start()
        try:
            metrics_url = f"http://127.0.0.1:{metrics_port}" if metrics_port else None
            yield Running(op, proxy, namespace, dsn, metrics_url)
        finally:
            proxy.restore_if_cut()
            # Tenants carry our finalizer: delete them while the operator still runs.
            tenants = cluster.custom.list_cluster_custom_object(GROUP, VERSION, "tenants")
            for item in tenants["items"]:
                cluster.delete("Tenant", item["metadata"]["name"])
            # JobQueues would be resumed by the next module's operator on another
            # database, and carry our finalizer: delete them while we run.
            queues = cluster.custom.list_cluster_custom_object(GROUP, VERSION, "jobqueues")
            for item in queues["items"]:
                meta = item["metadata"]
                cluster.delete("JobQueue", meta["name"], meta["namespace"])
            with contextlib.suppress(AssertionError):  # best effort: the next module copes
                wait.eventually_sync(
                    lambda: not cluster.custom.list_cluster_custom_object(
                        GROUP, VERSION, "tenants")["items"],
                    timeout=20, interval=0.1, what="every Tenant gone")
                # JobQueues carry our finalizer too (their schedules).
                wait.eventually_sync(
                    lambda: not cluster.custom.list_cluster_custom_object(
                        GROUP, VERSION, "jobqueues")["items"],
                    timeout=20, interval=0.1, what="every JobQueue gone")
            op.stop()
            proxy.stop()


def service_account_kubeconfig(
    control_plane: ControlPlane, namespace: str, account: str, path: Path
) -> Path:
    """A kubeconfig that authenticates as a ServiceAccount (TokenRequest API): RBAC applies."""
    token = control_plane.kubectl(
        "create", "token", account, "-n", namespace, "--duration=1h"
    ).stdout.strip()
    cfg = json.loads(control_plane.kubeconfig_path.read_text())
    cfg["users"] = [{"name": cfg["users"][0]["name"], "user": {"token": token}}]
    path.write_text(json.dumps(cfg))
    return path


class Cluster:
    """The test's view of the apiserver: typed APIs plus CR helpers."""

    def __init__(self, control_plane: ControlPlane) -> None:
        self.cp = control_plane
        self.api = config.new_client_from_config(config_file=str(control_plane.kubeconfig_path))  # type: ignore[no-untyped-call]
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.rbac = client.RbacAuthorizationV1Api(self.api)
        self.coord = client.CoordinationV1Api(self.api)
        self.autoscaling = client.AutoscalingV2Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def close(self) -> None:
        self.api.close()  # type: ignore[no-untyped-call]

    def namespace(self, prefix: str = "jq") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        return name

    # -- custom resources (plain dicts) --

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        plural = obj["kind"].lower() + "s"
        ns = obj["metadata"].get("namespace")
        if ns:
            return self.custom.create_namespaced_custom_object(GROUP, VERSION, ns, plural, obj)  # type: ignore[no-any-return]
        return self.custom.create_cluster_custom_object(GROUP, VERSION, plural, obj)  # type: ignore[no-any-return]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        plural = kind.lower() + "s"
        if namespace:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)  # type: ignore[no-any-return]
        return self.custom.get_cluster_custom_object(GROUP, VERSION, plural, name)  # type: ignore[no-any-return]

    def patch(
        self, kind: str, name: str, body: dict[str, Any], namespace: str | None = None
    ) -> dict[str, Any]:
        plural = kind.lower() + "s"
        if namespace:
            return self.custom.patch_namespaced_custom_object(  # type: ignore[no-any-return]
                GROUP, VERSION, namespace, plural, name, body
            )
        return self.custom.patch_cluster_custom_object(GROUP, VERSION, plural, name, body)  # type: ignore[no-any-return]

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        plural = kind.lower() + "s"
        with contextlib.suppress(ApiException):
            if namespace:
                self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)
            else:
                self.custom.delete_cluster_custom_object(GROUP, VERSION, plural, name)

    def exists(self, kind: str, name: str, namespace: str | None = None) -> bool:
        try:
            self.get(kind, name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def condition(
        self, kind: str, name: str, type_: str = "Ready", namespace: str | None = None
    ) -> dict[str, Any] | None:
        obj = self.get(kind, name, namespace)
        for cond in (obj.get("status") or {}).get("conditions") or []:
            if cond.get("type") == type_:
                return cond  # type: ignore[no-any-return]
        return None

    def secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        self.core.create_namespaced_secret(
            namespace,
            client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data),
        )


# -- JobQueue resources ----------------------------------------------------------

IMAGE = "registry.example/jobqueue:1.0"


def unique(prefix: str = "q") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def database_namespace(cluster: Cluster, running: Running, prefix: str) -> str:
    """A new namespace whose default database Secret points at `running`'s database."""
    namespace = cluster.namespace(prefix)
    cluster.secret(namespace, "jobqueue-database", {"url": running.dsn})
    return namespace


def jobqueue(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("image", IMAGE)
    return {
        "apiVersion": "jobqueue.dev/v1alpha1",
        "kind": "JobQueue",
        "metadata": {"name": name, "namespace": namespace, "labels": {"team": "payments"}},
        "spec": spec,
    }


def raw(cluster: Cluster, obj: object) -> dict[str, Any]:
    """A typed client object as the apiserver's camelCase dict."""
    return cluster.api.sanitize_for_serialization(obj)  # type: ignore[no-any-return]


def deployment(cluster: Cluster, name: str, namespace: str) -> dict[str, Any]:
    return raw(cluster, cluster.apps.read_namespaced_deployment(name, namespace))


def env_of(dep: dict[str, Any]) -> dict[str, Any]:
    container = dep["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


async def until_ready(cluster: Cluster, name: str, namespace: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        cond = cluster.condition("JobQueue", name, namespace=namespace)
        return cond if cond and cond["status"] == "True" else None

    return await eventually(probe, what=f"JobQueue {name} Ready")


async def until_reason(cluster: Cluster, name: str, namespace: str, reason: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        cond = cluster.condition("JobQueue", name, namespace=namespace)
        return cond if cond and cond["reason"] == reason else None

    return await eventually(probe, what=f"JobQueue {name} {reason}")


def external_metric(running: Running, path: str) -> tuple[int, dict[str, Any]]:
    assert running.metrics_url is not None
    url = f"{running.metrics_url}/apis/external.metrics.k8s.io/v1beta1{path}"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
