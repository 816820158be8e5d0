"""Who is calling the external-metrics server: the aggregator, on someone's behalf.

The kube-apiserver's aggregator proxies requests for external.metrics.k8s.io
to us over TLS with its front-proxy client certificate, and names the user it
authenticated in request headers (`X-Remote-User`, `X-Remote-Group`). Those
headers are worth exactly as much as the certificate: they are trusted only
when the TLS peer presented a certificate signed by the cluster's
requestheader CA and, if the cluster lists allowed names, with one of them as
its common name. The CA, the names and the header names come from the
ConfigMap kube-system/extension-apiserver-authentication, which the
apiserver publishes for every extension server (the same contract
k8s.io/apiserver's delegated authentication follows).

What the named user may read is then asked of the apiserver with a
SubjectAccessReview (`list` on the metric in the namespace, the verb an HPA's
external-metrics client uses), cached for a short while.

This module is pure apart from `fetch_config` and `SubjectAccessReviews`,
which call the apiserver through the operator's `Kube`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobqueue_operator.kube import Kube

CONFIGMAP_NAMESPACE = "kube-system"
CONFIGMAP_NAME = "extension-apiserver-authentication"
GROUP = "external.metrics.k8s.io"
VERSION = "v1beta1"


@dataclass(frozen=True, slots=True)
class FrontProxyConfig:
    """The requestheader half of extension-apiserver-authentication."""

    client_ca_pem: str
    allowed_names: tuple[str, ...] = ()
    username_headers: tuple[str, ...] = ("X-Remote-User",)
    group_headers: tuple[str, ...] = ("X-Remote-Group",)


@dataclass(frozen=True, slots=True)
class Identity:
    user: str
    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is not served: 401 (who are you?) or 403 (not you)."""

    status: int
    message: str


def _string_list(raw: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if not raw:
        return default
    parsed = json.loads(raw)
    if not isinstance(parsed, list) or not all(isinstance(x, str) for x in parsed):
        raise ValueError(f"expected a JSON list of strings, got {raw!r}")
    return tuple(parsed) or default


def parse_config(data: Mapping[str, str]) -> FrontProxyConfig | None:
    """The ConfigMap's data; None when the cluster has no front proxy configured."""
    ca = data.get("requestheader-client-ca-file")
    if not ca:
        return None
    return FrontProxyConfig(
        client_ca_pem=ca,
        allowed_names=_string_list(data.get("requestheader-allowed-names"), ()),
        username_headers=_string_list(
            data.get("requestheader-username-headers"), ("X-Remote-User",)
        ),
        group_headers=_string_list(data.get("requestheader-group-headers"), ("X-Remote-Group",)),
    )


def common_name(peercert: Mapping[str, Any] | None) -> str | None:
    """The subject CN of a certificate as `ssl.SSLSocket.getpeercert()` returns it."""
    for rdn in (peercert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None


def identify(
    config: FrontProxyConfig,
    peercert: Mapping[str, Any] | None,
    headers: Mapping[str, Sequence[str]],
    *,
    need_user: bool = True,
) -> Identity | Refusal:
    """The user the aggregator vouches for, or why the request is refused.

    `peercert` is what TLS verified against the requestheader CA (empty when
    the client sent no certificate: verification is optional so that such a
    client gets a readable 401 instead of a failed handshake). `headers`
    maps lowercase names to every value sent. Discovery is asked by the
    aggregator itself with no user (`need_user=False`).
    """
    if not peercert:
        return Refusal(401, "a front-proxy client certificate is required")
    name = common_name(peercert)
    if config.allowed_names and name not in config.allowed_names:
        return Refusal(401, f"client certificate CN {name!r} is not an allowed front proxy")
    user = next(
        (v for h in config.username_headers for v in headers.get(h.lower(), ()) if v), None
    )
    if user is None:
        if need_user:
            return Refusal(401, "the front proxy named no user")
        return Identity(user="", groups=())
    groups = tuple(
        g.strip()
        for h in config.group_headers
        for v in headers.get(h.lower(), ())
        for g in v.split(",")
        if g.strip()
    )
    return Identity(user=user, groups=groups)


def access_review(identity: Identity, *, namespace: str, metric: str) -> dict[str, Any]:
    """The SubjectAccessReview asking whether `identity` may read `metric` in `namespace`."""
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "metadata": {},
        "spec": {
            "user": identity.user,
            "groups": list(identity.groups),
            "resourceAttributes": {
                "group": GROUP,
                "version": VERSION,
                "resource": metric,
                "namespace": namespace,
                "verb": "list",
            },
        },
    }


async def fetch_config(kube: Kube) -> FrontProxyConfig | None:
    """Read the cluster's front-proxy settings; None if it publishes none."""
    found = await kube.get("v1", "ConfigMap", CONFIGMAP_NAME, CONFIGMAP_NAMESPACE)
    return parse_config((found or {}).get("data") or {})


@dataclass
class SubjectAccessReviews:
    """Asks the apiserver, remembering answers for `ttl` seconds (an HPA asks every 15 s)."""

    kube: Kube
    ttl: float = 10.0
    _cache: dict[tuple[str, tuple[str, ...], str, str], tuple[float, bool, str]] = field(
        default_factory=dict
    )

    async def allowed(
        self, identity: Identity, *, namespace: str, metric: str
    ) -> tuple[bool, str]:
        key = (identity.user, identity.groups, namespace, metric)
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1], hit[2]
        review = await self.kube.create(access_review(identity, namespace=namespace, metric=metric))
        status = review.get("status") or {}
        allowed = bool(status.get("allowed")) and not status.get("denied")
        reason = str(status.get("reason") or "")
        if len(self._cache) > 1000:  # bounded: identities are few, but never trust that
            self._cache.clear()
        self._cache[key] = (now + self.ttl, allowed, reason)
        return allowed, reason
