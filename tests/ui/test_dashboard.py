"""The dashboard end to end in headless Chromium: sign in, watch jobs run,
retry from the DLQ, bulk-retry a filtered view, and tenant data that holds
markup shown as text. Screenshots of the overview and of a job page are
saved as artifacts."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
from playwright.async_api import Page, expect

from jobqueue import db
from tests.support import api as support
from tests.support.procs import Proc
from tests.ui.conftest import QUEUE
from tests.ui.handlers import HOSTILE_ERROR

LIVE_SECONDS = 20_000  # ms: what a job takes to be run and shown, under load


async def _sign_in(page: Page, tenant: support.TenantKey) -> None:
    await page.goto("/ui/")
    await page.get_by_label("Tenant", exact=True).fill(tenant.id)
    await page.get_by_label("Key", exact=True).fill(tenant.key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#who")).to_have_text(f"tenant {tenant.id}")
    await expect(page.locator("#live")).to_have_text("live", timeout=LIVE_SECONDS)


async def _submit(client: httpx.AsyncClient, key: str, type: str, data: object,
                  queue: str = QUEUE) -> str:
    r = await client.post("/v1/jobs", json={"type": type, "data": data, "queue": queue},
                          headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _status(client: httpx.AsyncClient, job_id: str) -> str:
    return str((await client.get(f"/v1/jobs/{job_id}")).json()["status"])


async def test_sign_in_with_a_wrong_key_says_so_and_a_right_one_gets_in(
    page: Page, ui_api: Proc, ui_pool: db.Pool, page_errors: list[str]
) -> None:
    tenant = await support.tenant_with_key(ui_pool)
    await page.goto("/ui/")
    await page.get_by_label("Tenant", exact=True).fill(tenant.id)
    await page.get_by_label("Key", exact=True).fill("jq_wrong")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#sign-in-error")).to_contain_text("invalid tenant or API key")
    # The browser logs the refused request; that one is expected.
    page_errors[:] = [e for e in page_errors if "401" not in e]
    await page.get_by_label("Key", exact=True).fill(tenant.key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#who")).to_have_text(f"tenant {tenant.id}")
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()


async def test_a_submitted_job_goes_from_queued_to_succeeded_without_a_reload(
    page: Page, ui_api: Proc, ui_pool: db.Pool, worker: Proc,
    artifacts: Path,
) -> None:
    tenant = await support.tenant_with_key(ui_pool)
    await _sign_in(page, tenant)
    async with support.authed(ui_api.url, tenant) as client:
        await page.goto(f"/ui/#/jobs?queue={QUEUE}")
        await expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
        # A reload would clear this: it proves the page updated itself.
        await page.evaluate("window.__sameDocument = true")
        # Scheduled a little ahead, so the row is certainly seen queued first.
        r = await client.post("/v1/jobs", headers={"Idempotency-Key": "live-1"}, json={
            "type": "ui-work", "data": {"ms": 1500}, "queue": QUEUE})
        job_id = r.json()["id"]
        row = page.locator(f'tr[data-job-id="{job_id}"]')
        await expect(row).to_have_attribute("data-status",
                                            re.compile("queued|leased|running"),
                                            timeout=LIVE_SECONDS)
        await expect(row).to_have_attribute("data-status", "succeeded", timeout=LIVE_SECONDS)
        await expect(row.locator(".status")).to_have_text("succeeded")
        assert await page.evaluate("window.__sameDocument") is True
        # The overview shows it finished, in the chart and the counts.
        for n in range(6):
            await _submit(client, f"more-{n}", "ui-work", {"ms": 50})
        await page.get_by_role("link", name="Overview").click()
        card = page.locator(f'article[data-queue="{QUEUE}"]')
        await expect(card.locator(".finished")).to_have_text("7", timeout=LIVE_SECONDS)
        await expect(card.locator(".workers")).to_be_visible()
        await expect(card.locator("svg.chart rect.bar-succeeded").first).to_be_visible()
        assert await page.evaluate("window.__sameDocument") is True
        await page.screenshot(path=str(artifacts / "overview.png"), full_page=True)


async def test_a_dead_lettered_job_is_retried_from_its_page_and_runs(
    page: Page, ui_api: Proc, ui_pool: db.Pool, worker: Proc,
    artifacts: Path,
) -> None:
    tenant = await support.tenant_with_key(ui_pool)
    await _sign_in(page, tenant)
    async with support.authed(ui_api.url, tenant) as client:
        job_id = await _submit(client, "dlq-1", "ui-fail-once", {"order": 42})
        await page.goto(f"/ui/#/jobs/{job_id}")
        await expect(page.locator("#job-status .status")).to_have_text("dlq",
                                                                      timeout=LIVE_SECONDS)
        # The error, which holds markup, is text; its onerror never ran.
        await expect(page.locator("#last-error")).to_contain_text(HOSTILE_ERROR)
        await expect(page.locator("table.errors")).to_contain_text(HOSTILE_ERROR)
        await page.screenshot(path=str(artifacts / "job-dlq.png"), full_page=True)
        await page.locator("#retry-reset").click()
        dialog = page.locator("dialog#confirm")
        await expect(dialog).to_be_visible()
        await expect(dialog).to_contain_text("counting attempts from zero")
        await dialog.get_by_role("button", name="Yes").click()
        await expect(page.locator("#job-status .status")).to_have_text("succeeded",
                                                                      timeout=LIVE_SECONDS)
        await expect(page.locator("#result")).to_contain_text('"retried": true')
        assert await _status(client, job_id) == "succeeded"
        assert await page.evaluate("window.__pwned") is None
        await page.screenshot(path=str(artifacts / "job.png"), full_page=True)


async def test_bulk_retry_of_a_filtered_dlq_view_asks_first_then_runs_them_all(
    page: Page, ui_api: Proc, ui_pool: db.Pool, worker: Proc,
) -> None:
    tenant = await support.tenant_with_key(ui_pool)
    await _sign_in(page, tenant)
    async with support.authed(ui_api.url, tenant) as client:
        dead = [await _submit(client, f"bulk-{n}", "ui-fail-once", {"n": n}) for n in range(3)]
        kept = await _submit(client, "kept", "ui-work", {"ms": 1})
        await page.goto("/ui/#/jobs")
        await page.get_by_label("Status").select_option("dlq")
        await page.get_by_label("Type").fill("ui-fail-once")
        await page.get_by_role("button", name="Apply").click()
        await expect(page).to_have_url(re.compile(r"status=dlq"))
        table = page.locator("#jobs-table tbody tr")
        await expect(table).to_have_count(3, timeout=LIVE_SECONDS)
        await expect(page.locator("#total")).to_have_text("3 matching")
        # Asked first; saying no changes nothing.
        await page.locator("#bulk-retry").click()
        dialog = page.locator("dialog#confirm")
        await expect(dialog).to_contain_text("status = dlq, type = ui-fail-once")
        await dialog.get_by_role("button", name="Keep them").click()
        assert {await _status(client, j) for j in dead} == {"dlq"}
        await page.locator("#bulk-retry").click()
        await dialog.get_by_role("button", name="Retry them").click()
        await expect(page.locator("#notice")).to_have_text("Retried 3 jobs.")
        for j in dead:
            row = page.locator(f'tr[data-job-id="{j}"]')
            # The rows stay and follow their jobs live to the end.
            await expect(row).to_have_attribute("data-status", "succeeded",
                                                timeout=LIVE_SECONDS)
        assert await _status(client, kept) == "succeeded"
        assert {await _status(client, j) for j in dead} == {"succeeded"}


async def test_a_payload_with_a_script_renders_as_text_and_never_runs(
    page: Page, ui_api: Proc, ui_pool: db.Pool
) -> None:
    tenant = await support.tenant_with_key(ui_pool)
    await _sign_in(page, tenant)
    hostile = {
        "html": "<script>window.__pwned = 'payload'</script>",
        "img": "<img src=x onerror=\"window.__pwned = 'img'\">",
        "</pre><b>bold</b>": "<svg onload=\"window.__pwned = 'svg'\"></svg>",
    }
    async with support.authed(ui_api.url, tenant) as client:
        # A queue no worker serves: the job stays queued and visible.
        job_id = await _submit(client, "xss", "ui-work", hostile, queue="ui-idle")
    await page.goto("/ui/#/jobs?queue=ui-idle")
    await expect(page.locator(f'tr[data-job-id="{job_id}"]')).to_be_visible()
    await page.goto(f"/ui/#/jobs/{job_id}")
    payload = page.locator("#payload pre")
    await expect(payload).to_contain_text("<script>window.__pwned = 'payload'</script>")
    await expect(payload).to_contain_text("<img src=x onerror=")
    markup = page.locator("#payload script, #payload img, #payload svg, #payload b")
    assert await markup.count() == 0
    # Absent parts leave nothing behind (no stray "null" between sections).
    loose = await page.locator("#view").evaluate(
        "el => [...el.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent)")
    assert loose == []
    assert await page.evaluate("window.__pwned") is None
