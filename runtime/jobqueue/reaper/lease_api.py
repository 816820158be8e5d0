"""Just enough of a Kubernetes API client for a coordination.k8s.io/v1 Lease.

The runtime must not import the `kubernetes` or `kopf` packages (an
import-linter contract): this speaks to the apiserver with httpx, with the
pod's service-account token and CA when in a cluster, or with a kubeconfig
(token or client certificate) elsewhere, e.g. in tests.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from jobqueue import errors

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class KubeUnavailable(errors.JobQueueError):
    """The apiserver could not be reached or answered with a server error."""


class KubeConflict(errors.JobQueueError):
    """409: someone else changed or created the object first."""


class KubeRefused(errors.JobQueueError):
    """4xx other than 404/409: RBAC, validation. Not worth retrying blindly."""


@dataclass(frozen=True, slots=True)
class KubeConfig:
    server: str
    verify: ssl.SSLContext | bool
    token: str | None = None
    # In a pod the token is rotated on disk; it is re-read for every request.
    token_path: Path | None = None
    namespace: str = "default"

    def bearer(self) -> str | None:
        if self.token_path is not None:
            return self.token_path.read_text().strip()
        return self.token


def in_cluster(host: str | None, port: int) -> KubeConfig:
    """The pod's service account, and the apiserver the kubelet names in
    KUBERNETES_SERVICE_HOST/PORT (read by `ReaperSettings`)."""
    if not host:
        raise ValueError("not in a Kubernetes pod (KUBERNETES_SERVICE_HOST is unset)")
    if ":" in host:
        host = f"[{host}]"  # IPv6
    ctx = ssl.create_default_context(cafile=str(SERVICE_ACCOUNT / "ca.crt"))
    ns_file = SERVICE_ACCOUNT / "namespace"
    namespace = ns_file.read_text().strip() if ns_file.exists() else "default"
    return KubeConfig(
        server=f"https://{host}:{port}",
        verify=ctx,
        token_path=SERVICE_ACCOUNT / "token",
        namespace=namespace,
    )


def _materialise(data_b64: str, suffix: str) -> str:
    # ssl wants files; the data fields of a kubeconfig are inline base64.
    fd, path = tempfile.mkstemp(prefix="jobqueue-kube-", suffix=suffix)
    with os.fdopen(fd, "wb") as f:
        f.write(base64.b64decode(data_b64))
    return path


def from_kubeconfig(path: str | os.PathLike[str], *, context: str | None = None) -> KubeConfig:
    """The current (or named) context of a kubeconfig file."""
    raw: Any = yaml.safe_load(Path(path).read_text())
    try:
        ctx_name = context or raw["current-context"]
        ctx = next(c["context"] for c in raw["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in raw["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in raw["users"] if u["name"] == ctx["user"])
    except (KeyError, StopIteration, TypeError) as exc:
        raise ValueError(f"kubeconfig {path}: cannot resolve context ({exc!r})") from exc
    base = Path(path).parent

    def file_of(key: str, data_key: str, suffix: str, where: dict[str, Any]) -> str | None:
        if where.get(data_key):
            return _materialise(where[data_key], suffix)
        if where.get(key):
            return str(base / where[key])
        return None

    verify: ssl.SSLContext | bool
    if cluster.get("insecure-skip-tls-verify"):
        verify = False
    else:
        ca = file_of("certificate-authority", "certificate-authority-data", ".crt", cluster)
        verify = ssl.create_default_context(cafile=ca)
        cert = file_of("client-certificate", "client-certificate-data", ".crt", user)
        key = file_of("client-key", "client-key-data", ".key", user)
        if cert and key:
            verify.load_cert_chain(cert, key)
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = (base / user["tokenFile"]).read_text().strip()
    return KubeConfig(
        server=cluster["server"].rstrip("/"),
        verify=verify,
        token=token,
        namespace=ctx.get("namespace") or "default",
    )


class LeaseClient:
    """GET, POST and PUT of coordination.k8s.io/v1 Leases."""

    def __init__(self, config: KubeConfig, *, timeout: float = 5.0) -> None:
        self.config = config
        self._http = httpx.AsyncClient(base_url=config.server, verify=config.verify,
                                       timeout=timeout)

    def _url(self, namespace: str, name: str | None = None) -> str:
        base = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        return f"{base}/{name}" if name else base

    async def _call(self, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
        headers = {"Accept": "application/json"}
        token = self.config.bearer()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            resp = await self._http.request(
                method, url, headers=headers,
                content=json.dumps(body) if body is not None else None,
            )
        except httpx.HTTPError as exc:
            raise KubeUnavailable(f"apiserver unreachable: {type(exc).__name__}: {exc}") from exc
        if resp.status_code == 404:
            return None
        if resp.status_code == 409:
            raise KubeConflict(f"{method} {url}: conflict")
        if resp.status_code >= 500 or resp.status_code == 429:
            raise KubeUnavailable(f"{method} {url}: HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise KubeRefused(f"{method} {url}: HTTP {resp.status_code}: {resp.text[:300]}")
        return resp.json()

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        found: dict[str, Any] | None = await self._call("GET", self._url(namespace, name))
        return found

    async def create(self, namespace: str, lease: dict[str, Any]) -> dict[str, Any]:
        made: dict[str, Any] = await self._call("POST", self._url(namespace), lease)
        return made

    async def replace(self, namespace: str, name: str, lease: dict[str, Any]) -> dict[str, Any]:
        """PUT with metadata.resourceVersion: compare-and-swap; KubeConflict if stale."""
        done = await self._call("PUT", self._url(namespace, name), lease)
        if done is None:
            raise KubeConflict(f"lease {namespace}/{name} was deleted")
        return dict(done)

    async def close(self) -> None:
        await self._http.aclose()
