"""The FastAPI application: `create_app(settings, database)`.

The lifespan owns everything with a lifetime: the asyncpg pool and the
supervised side tasks (jobqueue.process): the one LISTEN connection that
feeds WebSocket watchers, the periodic depth refresh and the watchers'
tenant revalidation. None of them needs the database at start-up: the pool connects
lazily, the listener and the refresh retry by themselves, so an API that
starts during a database outage answers 503 (and /readyz says so) until the
database is back, then serves without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from wsgiref.simple_server import WSGIServer

from fastapi import FastAPI
from structlog.typing import FilteringBoundLogger

from jobqueue import db
from jobqueue.api import http_errors, middleware, tokens, ws
from jobqueue.api.hub import Hub
from jobqueue.api.quotas import BacklogGate, TenantCache
from jobqueue.api.revalidate import Revalidation
from jobqueue.api.routes import auth as auth_routes
from jobqueue.api.routes import bulk as bulk_routes
from jobqueue.api.routes import dashboard as dashboard_routes
from jobqueue.api.routes import jobs as job_routes
from jobqueue.api.routes import limits as limit_routes
from jobqueue.api.routes import ops as ops_routes
from jobqueue.api.routes import schedules as schedule_routes
from jobqueue.api.routes import ui as ui_routes
from jobqueue.api.routing import RouteTable
from jobqueue.api.state import Runtime
from jobqueue.db import health
from jobqueue.observability import logging as obslog
from jobqueue.observability import metrics
from jobqueue.process.depth import DepthRefresh
from jobqueue.process.listen import Listener
from jobqueue.process.service import run_forever
from jobqueue.process.supervise import Coros, supervise
from jobqueue.settings import ApiSettings, DatabaseSettings


def _log() -> FilteringBoundLogger:
    # Looked up per use: a logger bound at import would keep the logging
    # configuration of import time, not the one the command sets up.
    return obslog.get_logger(__name__)


__all__ = ["create_app"]

# An idle LISTEN connection proves it is alive this often; watchers resync
# after a reconnect, so a dead one costs at most this much lag.
LISTEN_PROBE_SECONDS = 10.0


def _background(rt: Runtime, dsn: str, *, listen: bool) -> Coros:
    """The API's side tasks. None may end the process over a database
    outage: each retries with backoff (the listener and the depth refresh
    whatever failed, since neither is needed to answer requests)."""
    log = _log()
    depth = DepthRefresh(conn=rt.pool, component="api",
                         interval=rt.settings.depth_refresh_seconds,
                         timeout=rt.settings.db_timeout_seconds, on_rows=rt.backlog.snapshot)
    tasks: Coros = {
        "depth-refresh": run_forever(depth, log=log),
        "watcher-revalidation": run_forever(Revalidation(rt), log=log),
    }
    if listen:
        events = Listener(dsn=dsn, on_event=rt.hub.publish, on_connect=rt.hub.resync,
                          component="api", log=log, application_name="jobqueue-api-listen",
                          ping_seconds=LISTEN_PROBE_SECONDS, retry_on=(Exception,))
        tasks["event-listener"] = run_forever(events, log=log)
    return tasks


async def _supervised(tasks: Coros, stop: asyncio.Event) -> None:
    if await supervise(tasks, stop=stop, log=_log()):
        # A side task failed (a bug: outages are retried). Stop the process
        # the clean way, as SIGTERM does, rather than serve half-working.
        os.kill(os.getpid(), signal.SIGTERM)


def _serve_metrics(settings: ApiSettings) -> WSGIServer | None:
    """The metrics port, if configured: no credentials, so it listens apart
    from the public port, where only the scraper should reach it."""
    if settings.metrics_port is None:
        return None
    host = settings.metrics_host or settings.host
    server = metrics.serve(settings.metrics_port, addr=host)
    _log().info("metrics served", host=host, port=server.server_port)
    return server


def create_app(settings: ApiSettings, database: DatabaseSettings) -> FastAPI:
    if settings.jwt_secret is None:
        raise ValueError("no JWT signing secret: set JOBQUEUE_API_JWT_SECRET (32+ bytes)")
    secret = settings.jwt_secret.get_secret_value()
    tokens.check_secret(secret)
    admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None
    if admin_token is not None and len(admin_token) < tokens.MIN_SECRET_BYTES:
        raise ValueError(f"the admin token must be at least {tokens.MIN_SECRET_BYTES} characters")
    dsn = database.dsn()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # min_size=0: creating the pool needs no database; connections are
        # opened on demand and a broken one is replaced on the next acquire.
        pool = await db.open_pool(database, dsn=dsn, min_size=0, application_name="jobqueue-api")
        hub = Hub(settings.ws_queue_size)
        rt = Runtime(
            settings=settings,
            secret=secret,
            admin_token=admin_token,
            verify=tokens.Verifier(secret, admin_token),
            pool=pool,
            tenants=TenantCache(settings.tenant_cache_seconds),
            backlog=BacklogGate(max_age_seconds=3 * settings.depth_refresh_seconds),
            hub=hub,
        )
        stop = asyncio.Event()
        background = asyncio.create_task(
            _supervised(_background(rt, dsn, listen=database.listen), stop), name="supervisor"
        )
        app.state.runtime = rt
        try:
            # Warm one connection so the first request does not pay for it.
            async with rt.deadline():
                await health.ping(pool)
        except Exception:
            _log().warning("database unavailable at start; answering 503 until it is back")
        scrape = _serve_metrics(settings)
        _log().info("api started", host=settings.host, port=settings.port)
        try:
            yield
        finally:
            if scrape is not None:
                scrape.shutdown()
                scrape.server_close()
            stop.set()
            await background
            pool.terminate()

    app = FastAPI(
        title="jobqueue",
        summary="A multi-tenant job queue on PostgreSQL",
        version="1",
        lifespan=lifespan,
    )
    http_errors.install(app)
    app.include_router(auth_routes.router)
    app.include_router(job_routes.router)
    app.include_router(ops_routes.router)
    app.include_router(schedule_routes.router)
    app.include_router(limit_routes.router)
    app.include_router(ws.router)
    app.include_router(bulk_routes.router)
    app.include_router(dashboard_routes.router)
    app.include_router(ui_routes.router)
    routers = (
        auth_routes.router,
        job_routes.router,
        ops_routes.router,
        bulk_routes.router,
        dashboard_routes.router,
        ui_routes.router,
        schedule_routes.router,
        limit_routes.router,
    )
    app.state.route_table = RouteTable(
        [*app.router.routes, *(route for r in routers for route in r.routes)]
    )
    # Added last runs first: Observe sees every answer, including 413s.
    single = 8 * settings.max_payload_bytes + middleware.SMALL_BODY_BYTES
    app.add_middleware(
        middleware.BodyLimit,
        limits={"/v1/jobs": single, "/v1/jobs/batch": settings.max_batch_bytes},
    )
    app.add_middleware(middleware.Observe, routes=app.state.route_table)
    return app
