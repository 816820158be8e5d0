"""kopf handlers: thin. They unpack what kopf hands over and delegate.

Change handlers (create, update, resume) reconcile at once and let kopf
retry on failure; a daemon per object reconciles again every
`status_interval_seconds`, which refreshes the numbers in status and undoes
drift that no watch event announced. Deleted or edited worker and reaper
Deployments are re-applied as soon as their watch event arrives.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import kopf

from jobqueue import errors
from jobqueue.observability import logging as obslog
from jobqueue.process.service import Service, run_forever
from jobqueue.settings import DatabaseSettings, RuntimeSettings
from jobqueue_operator import builders, kube, models, queue_reconciler, tenant_reconciler
from jobqueue_operator.context import Context
from jobqueue_operator.databases import Databases
from jobqueue_operator.kube import Kube, KubeError
from jobqueue_operator.metrics_server import MetricsServer
from jobqueue_operator.settings import FIELD_MANAGER, OperatorSettings
from jobqueue_operator.tenant_reconciler import Outcome

G, V = models.GROUP, models.VERSION


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    """The official client's loader (exec plugins, in-cluster tokens), read at login time."""
    return kube.connection_info(kube.load_configuration())


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Build the shared context; tests pass `operator_settings`, `database_settings`
    and `dsn` in the memo."""
    op: OperatorSettings = memo.get("operator_settings") or OperatorSettings()
    database: DatabaseSettings = memo.get("database_settings") or RuntimeSettings().database
    dsn: str | None = memo.get("dsn")
    if dsn is None and database.url is not None:
        dsn = database.dsn()
    # Handler progress and the last handled spec go into annotations: the
    # status schemas are structural, so kopf's default `status.kopf` would be
    # pruned by the apiserver.
    settings.persistence.finalizer = f"{G}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=G)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=G, key="last-handled-configuration"
    )
    settings.watching.server_timeout = op.watch_server_timeout_seconds
    settings.watching.client_timeout = op.watch_server_timeout_seconds + 10
    settings.networking.request_timeout = op.kube_timeout_seconds
    # One replica (the chart's Deployment uses Recreate): no peering CRDs needed.
    settings.peering.standalone = True
    settings.posting.level = logging.WARNING
    ctx = Context(
        settings=op,
        kube=Kube.connect(timeout=op.kube_timeout_seconds),
        databases=Databases(database, timeout=op.db_timeout_seconds, pool_max=op.db_pool_max),
        dsn=dsn,
    )
    memo.ctx = ctx
    if op.metrics_port is not None:
        server = MetricsServer(
            ctx,
            port=op.metrics_port,
            certfile=op.metrics_cert_file,
            keyfile=op.metrics_key_file,
            authenticate=op.metrics_authenticate,
        )
        await server.start()
        memo.metrics_server = server


@kopf.on.cleanup()
async def close(memo: kopf.Memo, **_: Any) -> None:
    server: MetricsServer | None = memo.get("metrics_server")
    if server is not None:
        await server.stop()
    ctx: Context | None = memo.get("ctx")
    if ctx is not None:
        await ctx.close()


def _finish(outcome: Outcome, ctx: Context) -> None:
    """Turn a problem into kopf's retry (temporary) or give-up (permanent) error."""
    if outcome.problem is None:
        return
    message = f"{outcome.problem.reason}: {outcome.problem.message}"
    if outcome.retry:
        raise kopf.TemporaryError(message, delay=ctx.settings.retry_seconds)
    raise kopf.PermanentError(message)


# ---- Tenant -------------------------------------------------------------------------------


def _object(body: kopf.Body) -> dict[str, Any]:
    """What a reconciler needs of a Tenant's or JobQueue's body."""
    return {
        "name": body.metadata.name or "",
        "uid": body.metadata.uid or "",
        "generation": body.metadata.get("generation"),
        "spec": dict(body.spec),
        "previous": dict(body.status),
    }


def _write_status(outcome: Outcome, patch: kopf.Patch, ctx: Context) -> None:
    patch.status.update(outcome.status)
    _finish(outcome, ctx)


async def _reconcile_tenant(ctx: Context, body: kopf.Body) -> Outcome:
    return await tenant_reconciler.reconcile(ctx, **_object(body))


@kopf.on.resume(G, V, "tenants")
@kopf.on.create(G, V, "tenants")
@kopf.on.update(G, V, "tenants")
async def tenant_changed(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    _write_status(await _reconcile_tenant(memo.ctx, body), patch, memo.ctx)


@kopf.on.delete(G, V, "tenants")
async def tenant_deleted(name: str, uid: str, memo: kopf.Memo, **_: Any) -> None:
    try:
        await tenant_reconciler.finalize(memo.ctx, name=name, uid=uid)
    except (errors.DatabaseUnavailable, KubeError) as exc:
        raise kopf.TemporaryError(str(exc), delay=memo.ctx.settings.retry_seconds) from None


@kopf.daemon(G, V, "tenants", cancellation_timeout=5.0)
async def tenant_status(
    body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, logger: kopf.Logger, **_: Any
) -> None:
    ctx: Context = memo.ctx
    await _refresh_status(ctx, "Tenant", body, lambda: _reconcile_tenant(ctx, body), stopped,
                          logger)


class StatusRefresh(Service[None]):
    """One object's status, reconciled and written again every status
    interval for as long as kopf keeps its daemon. Database problems are the
    reconcilers' (they land in the conditions); a status the apiserver does
    not take is retried at about the next tick."""

    name = "status-refresh"
    component = None
    retry_on = (KubeError,)

    def __init__(
        self, ctx: Context, kind: str, body: kopf.Body,
        reconcile: Callable[[], Awaitable[Outcome]], stopped: kopf.DaemonStopped,
    ) -> None:
        self.ctx = ctx
        self.kind = kind
        self.body = body
        self.reconcile = reconcile
        self.stopped = stopped
        self.interval = ctx.settings.status_interval_seconds
        self.retry_base_seconds = self.retry_cap_seconds = self.interval

    async def run_once(self) -> None:
        outcome = await self.reconcile()
        meta = self.body.metadata
        await self.ctx.kube.patch_status(
            models.API_VERSION, self.kind, meta.name or "", meta.namespace, outcome.status
        )

    async def wait(self, seconds: float) -> None:
        await self.stopped.wait(seconds)


async def _refresh_status(
    ctx: Context, kind: str, body: kopf.Body, reconcile: Callable[[], Awaitable[Outcome]],
    stopped: kopf.DaemonStopped, logger: kopf.Logger,
) -> None:
    # The change handler has just reconciled: the first pass waits a tick.
    if await stopped.wait(ctx.settings.status_interval_seconds):
        return
    service = StatusRefresh(ctx, kind, body, reconcile, stopped)
    # kopf's per-object logger: a warning also becomes an Event on the object.
    await run_forever(service, log=obslog.wrap_stdlib(logger), until=lambda: bool(stopped))


# ---- JobQueue -----------------------------------------------------------------------------


async def _reconcile_queue(ctx: Context, body: kopf.Body) -> Outcome:
    return await queue_reconciler.reconcile(
        ctx, namespace=body.metadata.namespace, **_object(body)
    )


@kopf.on.resume(G, V, "jobqueues")
@kopf.on.create(G, V, "jobqueues")
@kopf.on.update(G, V, "jobqueues")
async def jobqueue_changed(body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    _write_status(await _reconcile_queue(memo.ctx, body), patch, memo.ctx)


@kopf.daemon(G, V, "jobqueues", cancellation_timeout=5.0)
async def jobqueue_status(
    body: kopf.Body, memo: kopf.Memo, stopped: kopf.DaemonStopped, logger: kopf.Logger, **_: Any
) -> None:
    ctx: Context = memo.ctx
    await _refresh_status(ctx, "JobQueue", body, lambda: _reconcile_queue(ctx, body), stopped,
                          logger)


@kopf.on.delete(G, V, "jobqueues")
async def jobqueue_deleted(
    body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, runtime: timedelta, **_: Any
) -> None:
    """Remove the rows the JobQueue declared in its database (its schedules
    and limits: queue_rows) before it goes. kopf's finalizer holds the deletion while
    the database is unreachable, up to `cleanup_timeout_seconds`; after
    that, or when no database is known or it refuses us, the JobQueue goes
    and a warning (an Event on it) says what stayed."""
    ctx: Context = memo.ctx
    meta = body.metadata
    try:
        done = await queue_reconciler.finalize(
            ctx, name=meta.name or "", namespace=meta.namespace, uid=meta.uid or "",
            spec=dict(body.spec),
        )
    except errors.DatabaseUnavailable as exc:
        if runtime.total_seconds() < ctx.settings.cleanup_timeout_seconds:
            raise kopf.TemporaryError(str(exc), delay=ctx.settings.retry_seconds) from None
        logger.warning("gave up removing this JobQueue's schedules and limits from its "
                       "database: %s", exc)
        return
    except errors.DatabaseRefused as exc:
        logger.warning("this JobQueue's schedules and limits were not removed from its "
                       "database: %s", exc)
        return
    if done.removed is None:
        logger.warning("this JobQueue's schedules and limits were not removed (no database "
                       "known): %s", done.reason)
        return
    logger.info("removed from the queue's database: %s", done.removed)


@kopf.on.event(G, V, "jobqueues")
async def jobqueue_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    if event.get("type") == "DELETED":
        queue_reconciler.forget_memo(memo.ctx, body.metadata.uid or "")


@kopf.on.event("apps", "v1", "deployments", labels={"app.kubernetes.io/managed-by": FIELD_MANAGER})
async def child_deployment_event(
    event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, logger: kopf.Logger, **_: Any
) -> None:
    """Re-apply a JobQueue's children when one of its Deployments is deleted or edited."""
    ctx: Context = memo.ctx
    owner = next(
        (
            ref
            for ref in body.metadata.get("ownerReferences") or []
            if ref.get("kind") == queue_reconciler.KIND
            and ref.get("apiVersion") == models.API_VERSION
        ),
        None,
    )
    uid = body.metadata.uid or ""
    if owner is None:
        return
    if event.get("type") == "DELETED":
        ctx.applied_generations.pop(uid, None)
    else:
        generation = int(body.metadata.get("generation") or 0)
        # Unknown uid (just started): the resume handler re-applies anyway.
        if generation <= ctx.applied_generations.get(uid, generation):
            return
    namespace = body.metadata.namespace
    parent = await ctx.kube.get(models.API_VERSION, queue_reconciler.KIND, owner["name"], namespace)
    if parent is None or parent["metadata"].get("uid") != owner.get("uid"):
        return
    if parent["metadata"].get("deletionTimestamp"):
        return
    spec = queue_reconciler.parse(parent.get("spec") or {})
    if not isinstance(spec, models.JobQueueSpec):
        return
    logger.info("child Deployment %s/%s drifted; re-applying", namespace, body.metadata.name)
    jq = builders.Owner(
        kind=queue_reconciler.KIND, name=owner["name"], uid=owner["uid"], namespace=namespace
    )
    try:
        await queue_reconciler.apply_children(ctx, jq, spec)
    except KubeError as exc:
        logger.warning("re-apply failed, the status daemon will retry: %s", exc)
