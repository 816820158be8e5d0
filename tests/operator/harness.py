"""Helpers for operator tests: the operator in a thread, a cuttable TCP proxy, polling.

Not a conftest: test modules import what they use and build their own
fixtures from it (tests/operator/conftest.py belongs to the envtest).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import kopf
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

import jobqueue_operator  # noqa: F401  (registers the handlers)
from jobqueue_operator.settings import OperatorSettings
from tests.envtest import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
GROUP, VERSION = "jobqueue.dev", "v1alpha1"
T = TypeVar("T")


async def eventually(
    probe: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 20.0,
    interval: float = 0.1,
    what: str = "condition",
) -> T:
    """Poll `probe` until it returns something truthy without raising; return that."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
            if inspect.isawaitable(value):
                value = await value
            if value:
                return value  # type: ignore[return-value]
            last = value
        except (AssertionError, ApiException, LookupError, OSError) as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:g}s; last: {last!r}")
        await asyncio.sleep(interval)


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


class TcpProxy:
    """127.0.0.1:<port> forwarded to a target; `cut()` drops it all, `restore()` undoes that.

    Stands between the operator and Postgres to make the database unreachable
    without stopping the server the other tests share.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    def start(self) -> TcpProxy:
        self._thread.start()
        self.restore()
        return self

    def _run(self, coro: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)  # type: ignore[arg-type]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        self._writers -= {writer, up_writer}

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def cut(self) -> None:
        self._run(self._close())

    def restore(self) -> None:
        self._run(self._listen())

    def restore_if_cut(self) -> None:
        if self._server is None:
            self.restore()

    def stop(self) -> None:
        self._run(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def dsn_via(self, dsn: str) -> str:
        parts = urlsplit(dsn)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@127.0.0.1:{self.port}" if userinfo else f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))


def target_of(dsn: str) -> tuple[str, int]:
    parts = urlsplit(dsn)
    return parts.hostname or "127.0.0.1", parts.port or 5432


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
    proxy = TcpProxy(*target_of(dsn)).start()
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
            # JobQueues would be resumed by the next module's operator on another database.
            queues = cluster.custom.list_cluster_custom_object(GROUP, VERSION, "jobqueues")
            for item in queues["items"]:
                meta = item["metadata"]
                cluster.delete("JobQueue", meta["name"], meta["namespace"])
            deadline = time.monotonic() + 20
            while (
                time.monotonic() < deadline
                and cluster.custom.list_cluster_custom_object(GROUP, VERSION, "tenants")["items"]
            ):
                time.sleep(0.1)
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
