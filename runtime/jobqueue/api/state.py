"""What one API process holds while it runs, built by the app's lifespan."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from fastapi import Request

from jobqueue import db
from jobqueue.api.hub import Hub
from jobqueue.api.quotas import BacklogGate, TenantCache
from jobqueue.api.tokens import Verifier
from jobqueue.settings import ApiSettings


@dataclass
class Runtime:
    settings: ApiSettings
    secret: str
    admin_token: str | None
    verify: Verifier
    pool: db.Pool
    tenants: TenantCache
    backlog: BacklogGate
    hub: Hub

    def deadline(self) -> asyncio.Timeout:
        """Bounds a request's database work; TimeoutError answers 503."""
        return asyncio.timeout(self.settings.db_timeout_seconds)


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt
