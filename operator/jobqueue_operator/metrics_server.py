"""external.metrics.k8s.io for the worker HPAs: a queue's unfinished jobs, from Postgres.

The kube-apiserver's aggregator proxies
`GET /apis/external.metrics.k8s.io/v1beta1/namespaces/<ns>/jobqueue_queue_depth
?labelSelector=queue=<queue>` here (the chart registers the APIService); the
answer is read from the database of the JobQueue serving that queue in that
namespace, so an HPA never sees another namespace's queues.

Caveat: callers are not authenticated (only queue sizes are served); keep the
Service cluster-internal.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from jobqueue import errors
from jobqueue.db import stats
from jobqueue_operator import builders, models, queue_reconciler
from jobqueue_operator.context import Context
from jobqueue_operator.kube import KubeError
from jobqueue_operator.status import Depth

GROUP_VERSION = "external.metrics.k8s.io/v1beta1"
METRIC = builders.DEPTH_METRIC


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
                "name": METRIC,
                "singularName": "",
                "namespaced": True,
                "kind": "ExternalMetricValueList",
                "verbs": ["get"],
            }
        ],
    }


def value_list(labels: dict[str, str], values: list[int], now: datetime) -> dict[str, Any]:
    return {
        "kind": "ExternalMetricValueList",
        "apiVersion": GROUP_VERSION,
        "metadata": {},
        "items": [
            {
                "metricName": METRIC,
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


async def unfinished_jobs(ctx: Context, namespace: str, queue: str) -> int | None:
    """Queued plus running jobs of `queue`, from the database of the JobQueue serving it."""
    for item in await ctx.kube.list_all(models.API_VERSION, queue_reconciler.KIND, namespace):
        spec = queue_reconciler.parse(item.get("spec") or {})
        if not isinstance(spec, models.JobQueueSpec):
            continue
        if spec.queue_name(item["metadata"]["name"]) != queue:
            continue
        url = await queue_reconciler.database_url(ctx, namespace, spec)
        if not isinstance(url, str):
            raise errors.DatabaseUnavailable(url.message)
        depth = Depth.of(await ctx.databases.run(url, lambda p: stats.depth(p, queue=queue)))
        return depth.queued + depth.running
    return None


def app(ctx: Context) -> Starlette:
    async def discovery(request: Request) -> JSONResponse:
        return JSONResponse(resource_list())

    async def metric(request: Request) -> JSONResponse:
        namespace, name = request.path_params["namespace"], request.path_params["metric"]
        if name != METRIC:
            return _status(404, "NotFound", f"no external metric {name!r}; serving {METRIC!r}")
        labels = parse_selector(request.query_params.get("labelSelector", ""))
        if labels is None or "queue" not in labels:
            return _status(400, "BadRequest", "labelSelector must be queue=<name>")
        try:
            found = await unfinished_jobs(ctx, namespace, labels["queue"])
        except (errors.JobQueueError, KubeError) as exc:
            return _status(503, "ServiceUnavailable", str(exc))
        values = [] if found is None else [found]
        return JSONResponse(value_list({"queue": labels["queue"]}, values, datetime.now(UTC)))

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


class MetricsServer:
    """The app on its own task in kopf's loop; `stop()` on operator cleanup."""

    def __init__(
        self, ctx: Context, *, port: int, certfile: str | None, keyfile: str | None
    ) -> None:
        config = uvicorn.Config(
            app(ctx),
            host="0.0.0.0",
            port=port,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
            log_level="warning",
            lifespan="off",
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(), name="external-metrics")
        while not self._server.started:
            if self._task.done():
                await self._task  # raises what prevented the start
                return
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
