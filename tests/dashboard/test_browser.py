"""The dashboard in a real headless browser (chromium), against real workers and real jobs.

Each test also checks the page's script ran without an error (a Content-Security-Policy
violation shows up as one) and that live updates arrived without reloading the page.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest

from producer import Client, JobState
from producer.redis.typed import Redis
from tests.dashboard.browser import screenshot
from tests.dashboard.support import TOKEN, Dashboard
from tests.expected import data_uri
from tests.support.workers import WorkerFactory

pytest.importorskip("playwright", reason="Playwright for Python is not installed (dev extra)")
from playwright.async_api import Browser, Dialog, Page, expect

WAIT_MS = 30_000  # how long `expect` waits for the page to show something


class Watched:
    """A page, with the errors its scripts raised and a mark that is lost if it reloads."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)

    async def goto(self, url: str) -> None:
        await self.page.goto(url)
        await self.page.evaluate("window.sluiceTestMark = 1")

    async def not_reloaded(self) -> bool:
        return bool(await self.page.evaluate("window.sluiceTestMark === 1"))


@pytest.fixture
async def watched(browser: Browser) -> AsyncIterator[Watched]:
    context = await browser.new_context(viewport={"width": 1200, "height": 760})
    page = Watched(await context.new_page())
    yield page
    await context.close()


async def log_in(watched: Watched, dashboard: Dashboard, then: str) -> None:
    """Log in with the token through the login form, landing on ``then``."""
    page = watched.page
    await page.goto(dashboard.at(f"/login?next={quote(then)}"))
    await page.fill("#token", TOKEN)
    await page.click("#login-submit")
    await page.wait_for_url(dashboard.at(then))
    await page.evaluate("window.sluiceTestMark = 1")


async def accept(dialog: Dialog) -> None:
    await dialog.accept()


async def test_overview_with_a_worker_and_jobs(
    dashboard: Dashboard, watched: Watched, client: Client, workers: WorkerFactory
) -> None:
    """The overview counts jobs per state, lists the live worker, draws the queue chart, and
    follows a new job without a reload."""
    worker = workers()
    for i in range(3):
        await client.wait(await client.enqueue("text-stats", [f"data:,doc {i}"]), timeout_s=60)
    await client.enqueue("text-stats", ["data:,later"], defer_s=3600)
    page = watched.page
    await watched.goto(dashboard.at("/"))
    await expect(page.locator("#count-complete")).to_have_text("3")
    await expect(page.locator("#count-deferred")).to_have_text("1")
    await expect(page.locator(f'tr.worker[data-pid="{worker.pid}"]')).to_be_visible()
    assert await page.locator("#depth-chart polyline.depth").get_attribute("points")

    await client.enqueue("text-stats", ["data:,later too"], defer_s=3600)
    await expect(page.locator("#count-deferred")).to_have_text("2", timeout=WAIT_MS)
    await expect(page.locator("#stat-deferred")).to_have_text("2", timeout=WAIT_MS)
    assert await watched.not_reloaded()
    await screenshot(page, "overview")
    assert watched.errors == []


async def test_job_page_follows_stage_progress(
    dashboard: Dashboard, watched: Watched, client: Client, workers: WorkerFactory
) -> None:
    """A job's page shows its stage counts rise from 0 to the total as a real worker runs it,
    then names transform (a slow pipeline) as the bottleneck."""
    inputs = [data_uri(f"item {i}".encode()) for i in range(24)]
    job_id = await client.enqueue("test-sleep", inputs, options={"seconds": 0.25})
    page = watched.page
    await watched.goto(dashboard.at(f"/jobs/{job_id}"))
    await expect(page.locator("#job-state")).to_have_text("queued")
    stored = page.locator("#count-stored")
    seen = {await stored.text_content()}
    # started in a thread: this loop keeps serving the page meanwhile
    await asyncio.to_thread(
        workers, pipelines="tests.sample_pipelines", pool_size=2, transform_batch_items=1
    )
    deadline, shot = time.monotonic() + 60, False
    while await page.locator("#job-state").get_attribute("data-state") != "complete":
        assert time.monotonic() < deadline, f"job not complete on the page; saw {seen}"
        seen.add(await stored.text_content())
        if not shot and len(seen) > 1:  # mid-run: bars part-filled, bottleneck named
            await screenshot(page, "job")
            shot = True
        await asyncio.sleep(0.1)
    seen.add(await stored.text_content())
    assert {"0", "24"} <= seen
    for name, count in (("fetched", "24"), ("transformed", "24"), ("failed", "0")):
        await expect(page.locator(f"#count-{name}")).to_have_text(count)
    assert await page.locator("#progress-stored").get_attribute("value") == "24"
    await expect(page.locator("#bottleneck")).to_contain_text("Bottleneck: transform")
    await expect(page.locator("#results tbody tr")).to_have_count(24)
    assert await watched.not_reloaded()
    if not shot:
        await screenshot(page, "job")
    assert watched.errors == []


async def test_cancel_a_running_job_from_its_page(
    dashboard: Dashboard, watched: Watched, client: Client, workers: WorkerFactory
) -> None:
    """Logged in, the Cancel button stops a running job and the page shows it cancelled."""
    workers(pipelines="tests.sample_pipelines", pool_size=1, transform_batch_items=1)
    inputs = [data_uri(f"slow {i}".encode()) for i in range(200)]
    job_id = await client.enqueue("test-sleep", inputs, options={"seconds": 0.1})
    page = watched.page
    await log_in(watched, dashboard, f"/jobs/{job_id}")
    await expect(page.locator("#job-state")).to_have_text("in progress", timeout=WAIT_MS)
    page.on("dialog", accept)
    await page.click("#cancel")
    await expect(page.locator("#job-state")).to_have_text("cancelled", timeout=WAIT_MS)
    await expect(page.locator("#flash")).to_have_text(f"cancelled {job_id}")
    await expect(page.locator("#cancel")).to_have_count(0)
    status = await client.status(job_id)
    assert status.state == JobState.CANCELLED and status.stored < 200
    assert await watched.not_reloaded()
    assert watched.errors == []


async def test_retry_a_failed_job_from_the_failed_page(
    dashboard: Dashboard, watched: Watched, client: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """A failed job is listed with its error; Retry re-queues it, it leaves the list, and it
    completes on a real worker."""
    job_id = await client.enqueue("text-stats", ["data:,a", "data:,b"])
    await redis.set(client.keys.results(job_id), "not a hash")  # every try of it errors
    workers(max_tries=1)
    assert (await client.wait(job_id, timeout_s=60)).state == JobState.FAILED
    page = watched.page
    await log_in(watched, dashboard, "/failed")
    row = page.locator(f'tr[data-job="{job_id}"]')
    await expect(row).to_contain_text("WRONGTYPE")

    await redis.delete(client.keys.results(job_id))  # the cause is fixed
    await row.locator("button.retry").click()
    await expect(row).to_have_count(0, timeout=WAIT_MS)
    await expect(page.locator("#failed-count")).to_contain_text("0 job(s)")
    done = await client.wait(job_id, timeout_s=60)
    assert (done.state, done.stored) == (JobState.COMPLETE, 2)
    await watched.goto(dashboard.at(f"/jobs/{job_id}"))
    await expect(page.locator("#job-state")).to_have_text("complete")
    assert watched.errors == []
