"""The dashboard in a real browser: Debian's chromium driven by Playwright,
against a real `jobqueue api` and a real `jobqueue worker` on the test
PostgreSQL.

Chromium must be installed (hack/test.sh installs Debian's `chromium`);
without it these tests fail rather than skip. Screenshots go to
JOBQUEUE_UI_ARTIFACTS (default /tmp/jobqueue-ui-artifacts).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from jobqueue import db
from tests.conftest import PgServer, create_database, drop_database
from tests.support import api as support
from tests.support.procs import Proc

QUEUE = "ui"


def chromium() -> str:
    found = os.environ.get("JOBQUEUE_CHROMIUM") or shutil.which("chromium")
    if not found:
        raise RuntimeError(
            "no chromium: `apt-get install chromium` (hack/test.sh installs it), "
            "or point JOBQUEUE_CHROMIUM at a Chromium binary"
        )
    return found


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(os.environ.get("JOBQUEUE_UI_ARTIFACTS", "/tmp/jobqueue-ui-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
async def ui_dsn(pg_server: PgServer, template_db: str) -> AsyncIterator[str]:
    name = await create_database(pg_server, template_db)
    try:
        yield pg_server.dsn_for(name)
    finally:
        await drop_database(pg_server, name)


@pytest.fixture(scope="module")
async def ui_pool(ui_dsn: str) -> AsyncIterator[db.Pool]:
    pool = await db.create_pool(ui_dsn, min_size=1, max_size=5)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="module")
async def ui_api(
    ui_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Proc]:
    logs = tmp_path_factory.mktemp("ui-api")
    async with support.running_api(ui_dsn, logs, api_tenant_cache_seconds=0) as server:
        yield server


@pytest.fixture(scope="module")
def worker(ui_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    logs = tmp_path_factory.mktemp("ui-worker")
    proc = Proc("worker", ["worker", "--queue", QUEUE, "--concurrency", "4",
                           "--handlers", "tests.ui.handlers", "--poll-seconds", "0.5"],
                dsn=ui_dsn, logdir=logs).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        b = await p.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
def page_errors() -> list[str]:
    """Script errors and console errors of the test's page (CSP violations too)."""
    return []


@pytest.fixture
async def page(
    browser: Browser, ui_api: Proc, page_errors: list[str]
) -> AsyncIterator[Page]:
    context = await browser.new_context(base_url=ui_api.url, viewport={"width": 1280,
                                                                        "height": 900})
    p = await context.new_page()
    p.on("pageerror", lambda exc: page_errors.append(str(exc)))
    p.on("console", lambda m: page_errors.append(m.text) if m.type == "error" else None)
    try:
        yield p
    finally:
        await context.close()
    # A CSP violation or a script error is a bug of the page.
    assert page_errors == [], page_errors
