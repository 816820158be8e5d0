"""The external-metrics server trusts only the aggregator, and only for users
the apiserver authorizes.

A real kube-apiserver publishes its front-proxy settings (requestheader CA,
allowed names) in kube-system/extension-apiserver-authentication and answers
the SubjectAccessReviews; the test plays the aggregator with the apiserver's
own front-proxy client certificate, and impostors with others.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from jobqueue.embedded import free_port
from jobqueue.settings import DatabaseSettings
from jobqueue_operator.context import Context
from jobqueue_operator.databases import Databases
from jobqueue_operator.kube import Kube
from jobqueue_operator.metrics_server import MetricsServer
from jobqueue_operator.settings import OperatorSettings
from tests.envtest import FRONT_PROXY_CLIENT, ControlPlane
from tests.operator.harness import Cluster, kubeconfig_env

ROOT = Path(__file__).resolve().parents[2]
METRIC = "jobqueue_queue_depth"
METRICS = "/apis/external.metrics.k8s.io/v1beta1"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def server(control_plane: ControlPlane) -> AsyncIterator[int]:
    with kubeconfig_env(control_plane.kubeconfig_path):
        kube = Kube.connect(timeout=10)
    ctx = Context(
        settings=OperatorSettings(),
        kube=kube,
        databases=Databases(DatabaseSettings(), timeout=1, pool_max=1),
        dsn=None,
    )
    pki = control_plane.tmpdir / "pki"
    port = free_port()
    metrics = MetricsServer(
        ctx, port=port, certfile=str(pki / "serving.crt"), keyfile=str(pki / "serving.key")
    )
    await metrics.start()
    try:
        yield port
    finally:
        await metrics.stop()
        kube.close()


def client_cert(cp: ControlPlane, cn: str, ca: str) -> tuple[str, str]:
    stem = cp.tmpdir / "pki" / f"{ca}-{cn}"
    if not stem.with_suffix(".crt").exists():
        cp.sign_client_cert(stem, cn, ca=ca)
    return f"{stem}.crt", f"{stem}.key"


def get(
    cp: ControlPlane,
    port: int,
    path: str,
    *,
    cert: tuple[str, str] | None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """One HTTPS request as the aggregator would send it; (0, {}) if TLS refused us."""
    tls = ssl.create_default_context(cafile=str(cp.ca_path))
    if cert is not None:
        tls.load_cert_chain(*cert)
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            tls.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
        ):
            conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            answer = b"".join(iter(lambda: conn.recv(65536), b"")).decode()
    except (ssl.SSLError, ConnectionResetError):
        return 0, {}
    if not answer:  # TLS 1.3: the server's verdict on our certificate comes after ours
        return 0, {}
    head, _, body = answer.partition("\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def metric_path(namespace: str, queue: str = "emails") -> str:
    selector = urllib.parse.quote(f"queue={queue}")
    return f"{METRICS}/namespaces/{namespace}/{METRIC}?labelSelector={selector}"


def allow_metrics(cluster: Cluster, namespace: str, *, user: str | None, group: str | None) -> None:
    """The rule an HPA controller's role carries, bound in one namespace."""
    rbac = client.RbacAuthorizationV1Api(cluster.api)
    cluster.core.create_namespace({"metadata": {"name": namespace}})
    role = unique("ext-metrics")
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": role},
            "rules": [
                {"apiGroups": ["external.metrics.k8s.io"], "resources": ["*"], "verbs": ["list"]}
            ],
        },
    )
    subject = (
        {"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}
        if user
        else {"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": role},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [subject],
        },
    )


async def test_only_the_front_proxy_acting_for_an_authorized_user_reads_metrics(
    control_plane: ControlPlane, cluster: Cluster, server: int
) -> None:
    cp, port = control_plane, server
    allowed_ns, other_ns = unique("hpa-ok"), unique("hpa-other")
    allow_metrics(cluster, allowed_ns, user="hpa-user", group=None)
    cluster.core.create_namespace({"metadata": {"name": other_ns}})
    proxy = client_cert(cp, FRONT_PROXY_CLIENT, "front-proxy-ca")

    def call(
        path: str, cert: tuple[str, str] | None, **headers: str
    ) -> tuple[int, dict[str, Any]]:
        sent = {k.replace("_", "-"): v for k, v in headers.items()}
        return get(cp, port, path, cert=cert, headers=sent)

    # The aggregator for an authorized user: served.
    served = metric_path(allowed_ns)
    code, body = await asyncio.to_thread(call, served, proxy, X_Remote_User="hpa-user")
    assert code == 200, body
    assert body["kind"] == "ExternalMetricValueList"

    # No client certificate: 401, even with the user headers an attacker can type.
    code, body = await asyncio.to_thread(call, served, None, X_Remote_User="hpa-user")
    assert (code, body["reason"]) == (401, "Unauthorized")

    # Signed by the front-proxy CA but not an allowed name: 401.
    impostor = client_cert(cp, "someone-else", "front-proxy-ca")
    code, body = await asyncio.to_thread(
        call, metric_path(allowed_ns), impostor, X_Remote_User="hpa-user"
    )
    assert code == 401 and "someone-else" in body["message"]

    # The allowed name, but from another CA (the cluster's client CA): no handshake.
    wrong_ca = client_cert(cp, FRONT_PROXY_CLIENT, "ca")
    code, _ = await asyncio.to_thread(call, served, wrong_ca, X_Remote_User="hpa-user")
    assert code == 0

    # The real front proxy, but naming nobody: 401; a user without RBAC: 403.
    code, _ = await asyncio.to_thread(call, metric_path(allowed_ns), proxy)
    assert code == 401
    code, body = await asyncio.to_thread(call, served, proxy, X_Remote_User="mallory")
    assert code == 403 and "mallory" in body["message"]

    # The authorized user, in a namespace where they have no grant: 403.
    code, _ = await asyncio.to_thread(call, metric_path(other_ns), proxy, X_Remote_User="hpa-user")
    assert code == 403


async def test_groups_named_by_the_front_proxy_are_authorized(
    control_plane: ControlPlane, cluster: Cluster, server: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="jobqueue_operator.metrics_server")
    namespace = unique("hpa-group")
    allow_metrics(cluster, namespace, user=None, group="autoscalers")
    proxy = client_cert(control_plane, FRONT_PROXY_CLIENT, "front-proxy-ca")
    headers = {
        "X-Remote-User": "some-controller",
        "X-Remote-Group": "system:authenticated,autoscalers",
    }
    code, body = await asyncio.to_thread(
        get, control_plane, server, metric_path(namespace), cert=proxy, headers=headers
    )
    assert code == 200, body
    # The log names the caller and the proxy it came through (what an operator audits).
    assert any(
        "for user some-controller (groups system:authenticated,autoscalers) via front proxy "
        f"{FRONT_PROXY_CLIENT}: allowed" in r.getMessage()
        for r in caplog.records
    ), [r.getMessage() for r in caplog.records]


async def test_discovery_needs_the_front_proxy_but_no_user(
    control_plane: ControlPlane, cluster: Cluster, server: int
) -> None:
    path = METRICS
    proxy = client_cert(control_plane, FRONT_PROXY_CLIENT, "front-proxy-ca")
    code, body = await asyncio.to_thread(get, control_plane, server, path, cert=proxy)
    assert code == 200 and METRIC in [r["name"] for r in body["resources"]]
    code, _ = await asyncio.to_thread(get, control_plane, server, path, cert=None)
    assert code == 401


def test_authentication_needs_tls(control_plane: ControlPlane) -> None:
    ctx = Context(
        settings=OperatorSettings(),
        kube=Kube(client.ApiClient()),
        databases=Databases(DatabaseSettings(), timeout=1, pool_max=1),
        dsn=None,
    )
    with pytest.raises(ValueError, match="only over TLS"):
        MetricsServer(ctx, port=free_port(), certfile=None, keyfile=None)
    ctx.kube.close()
