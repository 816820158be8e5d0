"""A small async client for the few Kubernetes calls the operator makes.

kopf watches and patches the custom resources itself; this module covers the
children: server-side apply, get, create, delete and list, on plain dicts
(the builders produce dicts, and a typed model would only round-trip them).
Requests go through the official client's ApiClient, which knows every way a
kubeconfig or a service account authenticates, in a worker thread so the
event loop never blocks.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping
from typing import Any, cast

import kopf
import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from jobqueue_operator.settings import FIELD_MANAGER, KubeconfigSettings

Manifest = dict[str, Any]

# kind -> plural; the operator touches these kinds only, so no discovery round trip.
PLURALS: Mapping[str, str] = {
    "Deployment": "deployments",
    "ServiceAccount": "serviceaccounts",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "Secret": "secrets",
    "Lease": "leases",
    "HorizontalPodAutoscaler": "horizontalpodautoscalers",
    "JobQueue": "jobqueues",
    "Tenant": "tenants",
    "ConfigMap": "configmaps",
    "SubjectAccessReview": "subjectaccessreviews",
    "ScaledObject": "scaledobjects",
    "TriggerAuthentication": "triggerauthentications",
}


class KubeError(Exception):
    """A Kubernetes API call failed; `status` is the HTTP status (0 if none)."""

    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


class Conflict(KubeError):
    """409: the object already exists, or an apply conflicts."""


def path(api_version: str, kind: str, namespace: str | None, name: str | None = None) -> str:
    prefix = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    ns = f"/namespaces/{namespace}" if namespace else ""
    tail = f"/{name}" if name else ""
    return f"{prefix}{ns}/{PLURALS[kind]}{tail}"


def load_configuration() -> client.Configuration:
    """In-cluster service account first, then $KUBECONFIG or ~/.kube/config (kopf's order).

    $KUBECONFIG is read now: the client library's default is frozen at its import.
    """
    cfg = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        path = KubeconfigSettings().kubeconfig or os.path.expanduser("~/.kube/config")
        config.load_kube_config(config_file=path, client_configuration=cfg)  # type: ignore[no-untyped-call]
    return cfg


def connection_info(cfg: client.Configuration) -> kopf.ConnectionInfo:
    """The same credentials for kopf's own watches and patches."""
    header = cfg.get_api_key_with_prefix("BearerToken") or cfg.get_api_key_with_prefix(
        "authorization"
    )
    scheme, _, token = (header or "").rpartition(" ")
    return kopf.ConnectionInfo(
        server=cfg.host,
        ca_path=cfg.ssl_ca_cert,
        insecure=not cfg.verify_ssl,
        username=cfg.username or None,
        password=cfg.password or None,
        scheme=scheme or ("Bearer" if token else None),
        token=token or None,
        certificate_path=cfg.cert_file,
        private_key_path=cfg.key_file,
    )


class Kube:
    """Async calls on manifests; 404 reads as None, other failures raise KubeError."""

    def __init__(self, api: client.ApiClient, *, timeout: float = 30.0) -> None:
        self._api = api
        self._timeout = timeout

    @classmethod
    def connect(cls, *, timeout: float = 30.0) -> Kube:
        return cls(client.ApiClient(configuration=load_configuration()), timeout=timeout)

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    async def apply(self, obj: Manifest, *, force: bool = True) -> Manifest:
        """Server-side apply as field manager `jobqueue-operator`.

        `force` takes over fields another manager set (someone's `kubectl
        edit`): restoring drift is the point of applying.
        """
        meta = obj["metadata"]
        return await self._call(
            "PATCH",
            path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"]),
            query=[("fieldManager", FIELD_MANAGER), ("force", "true" if force else "false")],
            body=obj,
            content_type="application/apply-patch+yaml",
        )

    async def patch_status(
        self, api_version: str, kind: str, name: str, namespace: str | None, status: Manifest
    ) -> Manifest:
        """Merge-patch the status subresource (None values delete fields)."""
        return await self._call(
            "PATCH",
            path(api_version, kind, namespace, name) + "/status",
            body={"status": status},
            content_type="application/merge-patch+json",
        )

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Manifest | None:
        try:
            return await self._call("GET", path(api_version, kind, namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    async def list_all(
        self, api_version: str, kind: str, namespace: str | None = None
    ) -> list[Manifest]:
        found = await self._call("GET", path(api_version, kind, namespace))
        return cast(list[Manifest], found.get("items") or [])

    async def create(self, obj: Manifest) -> Manifest:
        meta = obj["metadata"]
        return await self._call(
            "POST", path(obj["apiVersion"], obj["kind"], meta.get("namespace")), body=obj
        )

    async def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> bool:
        """True if deleted, False if it was not there."""
        try:
            await self._call("DELETE", path(api_version, kind, namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def _call(
        self,
        method: str,
        resource_path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Manifest | None = None,
        content_type: str = "application/json",
    ) -> Manifest:
        return await asyncio.to_thread(
            self._call_sync, method, resource_path, query, body, content_type
        )

    def _call_sync(
        self,
        method: str,
        resource_path: str,
        query: list[tuple[str, str]] | None,
        body: Manifest | None,
        content_type: str,
    ) -> Manifest:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        request = self._api.param_serialize(
            method=method,
            resource_path=resource_path,
            query_params=query or [],
            header_params=headers,
            # A dict: the client JSON-encodes it for JSON and apply-patch YAML alike.
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self._api.call_api(*request, _request_timeout=self._timeout)
            response.read()  # type: ignore[no-untyped-call]
        except ApiException as exc:
            raise _error(method, resource_path, exc) from None
        except (OSError, urllib3.exceptions.HTTPError) as exc:  # refused, reset, timed out
            raise KubeError(f"{method} {resource_path}: {exc}") from exc
        if not 200 <= response.status <= 299:
            raise _error(method, resource_path, ApiException(http_resp=response))
        data = response.data
        return cast(Manifest, json.loads(data)) if data else {}


def _error(method: str, resource_path: str, exc: ApiException) -> KubeError:
    status = int(exc.status or 0)
    reason, message = str(exc.reason or ""), str(exc.reason or "")
    if exc.body:
        try:
            parsed = json.loads(exc.body)
            message = parsed.get("message") or message
            reason = parsed.get("reason") or reason
        except (ValueError, AttributeError):
            message = str(exc.body)[:500]
    cls = Conflict if status == 409 else KubeError
    return cls(f"{method} {resource_path}: {status} {message}", status, reason)
