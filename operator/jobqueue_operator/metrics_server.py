"""external.metrics.k8s.io for the worker HPAs: a queue's unfinished jobs, from Postgres.

The kube-apiserver's aggregator proxies
`GET /apis/external.metrics.k8s.io/v1beta1/namespaces/<ns>/jobqueue_queue_depth
?labelSelector=queue=<queue>` here (the chart registers the APIService); the
answer is read from the database of the JobQueue serving that queue in that
namespace, so an HPA never sees another namespace's queues.

Callers are authenticated as the aggregator (its front-proxy client
certificate) and the user it names is authorized with a SubjectAccessReview
(`front_proxy`): anything else gets 401 or 403. Authentication needs TLS;
only tests and local runs switch it off (`authenticate=False`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from jobqueue import errors
from jobqueue.db import stats
from jobqueue_operator import autoscaler_builders, front_proxy, models, queue_reconciler
from jobqueue_operator.context import Context
from jobqueue_operator.kube import KubeError
from jobqueue_operator.status import Depth

GROUP_VERSION = "external.metrics.k8s.io/v1beta1"
METRIC = autoscaler_builders.DEPTH_METRIC
METRICS = (autoscaler_builders.DEPTH_METRIC, autoscaler_builders.AGE_METRIC)
log = logging.getLogger(__name__)
# The ASGI scope key under which the connection's verified client certificate travels.
PEERCERT = "jobqueue.peercert"


def parse_selector(text: str) -> dict[str, str] | None:
    """An equality-based label selector (`a=b,c==d`) as a dict; None if it is anything else."""
    labels: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "!=" in part or "=" not in part:
            return None
        key, _, value = part.replace("==", "=").partition("=")
        if not key.strip():
            return None
        labels[key.strip()] = value.strip()
    return labels


def resource_list() -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": [
            {
                "name": name,
                "singularName": "",
                "namespaced": True,
                "kind": "ExternalMetricValueList",
                "verbs": ["get"],
            }
            for name in METRICS
        ],
    }


def value_list(
    labels: dict[str, str], values: list[int], now: datetime, metric: str = METRIC
) -> dict[str, Any]:
    return {
        "kind": "ExternalMetricValueList",
        "apiVersion": GROUP_VERSION,
        "metadata": {},
        "items": [
            {
                "metricName": metric,
                "metricLabels": labels,
                "timestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "value": str(value),
            }
            for value in values
        ],
    }


def _status(code: int, reason: str, message: str) -> JSONResponse:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "reason": reason,
        "message": message,
        "code": code,
    }
    return JSONResponse(body, status_code=code)


async def queue_depth(ctx: Context, namespace: str, queue: str) -> Depth | None:
    """The jobs of `queue`, from the database of the JobQueue serving it in `namespace`."""
    for item in await ctx.kube.list_all(models.API_VERSION, queue_reconciler.KIND, namespace):
        spec = queue_reconciler.parse(item.get("spec") or {})
        if not isinstance(spec, models.JobQueueSpec):
            continue
        if spec.queue_name(item["metadata"]["name"]) != queue:
            continue
        url = await queue_reconciler.database_url(ctx, namespace, spec)
        if not isinstance(url, str):
            raise errors.DatabaseUnavailable(url.message)
        return Depth.of(await ctx.databases.run(url, lambda p: stats.depth(p, queue=queue)))
    return None


def metric_value(metric: str, depth: Depth) -> int:
    """What an autoscaler compares with its target."""
    if metric == autoscaler_builders.AGE_METRIC:
        return int(depth.oldest_ready_age_seconds or 0)
    return depth.queued + depth.running


class Guard:
    """Front-proxy authentication plus SubjectAccessReview authorization."""

    def __init__(
        self, config: front_proxy.FrontProxyConfig, reviews: front_proxy.SubjectAccessReviews
    ) -> None:
        self.config = config
        self.reviews = reviews

    def identify(
        self, request: Request, *, need_user: bool
    ) -> front_proxy.Identity | front_proxy.Refusal:
        headers: dict[str, list[str]] = {}
        for key, value in Headers(scope=request.scope).raw:
            headers.setdefault(key.decode("latin-1").lower(), []).append(value.decode("latin-1"))
        peercert = request.scope.get(PEERCERT)
        return front_proxy.identify(self.config, peercert, headers, need_user=need_user)

    async def check(self, request: Request, namespace: str, metric: str) -> JSONResponse | None:
        """None if the request may be served, else the refusal to send."""
        who = self.identify(request, need_user=True)
        if isinstance(who, front_proxy.Refusal):
            return _refusal(who)
        try:
            allowed, reason = await self.reviews.allowed(who, namespace=namespace, metric=metric)
        except KubeError as exc:
            return _status(503, "ServiceUnavailable", f"cannot authorize: {exc}")
        # One line per served request (an HPA asks every 15 s): who asked, through which proxy.
        log.info(
            "external metric %s in %s for user %s (groups %s) via front proxy %s: %s",
            metric,
            namespace,
            who.user,
            ",".join(who.groups) or "-",
            front_proxy.common_name(request.scope.get(PEERCERT)),
            "allowed" if allowed else "denied",
        )
        if not allowed:
            because = f": {reason}" if reason else ""
            return _status(
                403,
                "Forbidden",
                f"{who.user} may not list {metric} in {GROUP_VERSION} in namespace "
                f"{namespace}{because}",
            )
        return None


def _refusal(refusal: front_proxy.Refusal) -> JSONResponse:
    reason = "Unauthorized" if refusal.status == 401 else "Forbidden"
    return _status(refusal.status, reason, refusal.message)


def app(ctx: Context, guard: Guard | None = None) -> Starlette:
    async def discovery(request: Request) -> JSONResponse:
        if guard is not None:
            who = guard.identify(request, need_user=False)
            if isinstance(who, front_proxy.Refusal):
                return _refusal(who)
        return JSONResponse(resource_list())

    async def metric(request: Request) -> JSONResponse:
        namespace, name = request.path_params["namespace"], request.path_params["metric"]
        if guard is not None:
            refused = await guard.check(request, namespace, name)
            if refused is not None:
                return refused
        if name not in METRICS:
            serving = ", ".join(METRICS)
            return _status(404, "NotFound", f"no external metric {name!r}; serving {serving}")
        labels = parse_selector(request.query_params.get("labelSelector", ""))
        if labels is None or "queue" not in labels:
            return _status(400, "BadRequest", "labelSelector must be queue=<name>")
        try:
            found = await queue_depth(ctx, namespace, labels["queue"])
        except (errors.JobQueueError, KubeError) as exc:
            return _status(503, "ServiceUnavailable", str(exc))
        values = [] if found is None else [metric_value(name, found)]
        now = datetime.now(UTC)
        return JSONResponse(value_list({"queue": labels["queue"]}, values, now, name))

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route(f"/apis/{GROUP_VERSION}", discovery),
            Route(f"/apis/{GROUP_VERSION}/namespaces/{{namespace}}/{{metric}}", metric),
            Route("/healthz", healthz),
        ]
    )


class _Server(uvicorn.Server):
    """Leaves SIGTERM to kopf, which owns the process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _PeerCertProtocol(H11Protocol):
    """h11 that hands each request the client certificate TLS verified.

    uvicorn does not put the peer certificate into the ASGI scope, and the
    front proxy's identity is exactly that certificate.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        peercert = transport.get_extra_info("peercert")
        inner: ASGIApp = self.app

        async def with_peercert(scope: Scope, receive: Receive, send: Send) -> None:
            await inner({**scope, PEERCERT: peercert}, receive, send)

        self.app = with_peercert


class MetricsServer:
    """The app on its own task in kopf's loop; `stop()` on operator cleanup.

    With `authenticate` (the default) it needs TLS and reads the cluster's
    front-proxy settings at start: a cluster without them cannot reach an
    aggregated API anyway, so that is a start-up error, not an open door.
    """

    def __init__(
        self,
        ctx: Context,
        *,
        port: int,
        certfile: str | None,
        keyfile: str | None,
        authenticate: bool = True,
    ) -> None:
        if authenticate and not (certfile and keyfile):
            raise ValueError("the external-metrics server authenticates callers only over TLS")
        self._ctx = ctx
        self._port = port
        self._certfile = certfile
        self._keyfile = keyfile
        self._authenticate = authenticate
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def _guard(self) -> Guard:
        config = await front_proxy.fetch_config(self._ctx.kube)
        if config is None:
            raise RuntimeError(
                f"{front_proxy.CONFIGMAP_NAMESPACE}/{front_proxy.CONFIGMAP_NAME} has no "
                "requestheader-client-ca-file: the apiserver needs --requestheader-client-ca-file "
                "and --proxy-client-cert-file for aggregated APIs"
            )
        return Guard(config, front_proxy.SubjectAccessReviews(self._ctx.kube))

    async def start(self) -> None:
        guard = (await self._guard()) if self._authenticate else None
        config = uvicorn.Config(
            app(self._ctx, guard),
            host="0.0.0.0",
            port=self._port,
            ssl_certfile=self._certfile,
            ssl_keyfile=self._keyfile,
            # Optional, so a caller without a certificate gets a readable 401;
            # one with a certificate of another CA fails the handshake.
            ssl_cert_reqs=ssl.CERT_OPTIONAL if guard else ssl.CERT_NONE,
            http=_PeerCertProtocol,
            log_level="warning",
            lifespan="off",
        )
        if guard is not None:
            # The CA goes in from memory: the pod's root filesystem is read-only
            # and has no /tmp.
            config.load()
            assert config.ssl is not None
            config.ssl.load_verify_locations(cadata=guard.config.client_ca_pem)
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(), name="external-metrics")
        while not self._server.started:
            if self._task.done():
                await self._task  # raises what prevented the start
                return
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            await self._task

