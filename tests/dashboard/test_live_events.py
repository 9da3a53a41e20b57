"""The pages follow the event stream (server-sent events) in a real headless browser: with
the poll stretched to minutes, a job's page and the jobs list still move as the job does."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from producer import Client
from producer.dashboard.render import environment
from tests.dashboard.support import Dashboard
from tests.expected import data_uri
from tests.support.workers import WorkerFactory

pytest.importorskip("playwright", reason="Playwright for Python is not installed (dev extra)")
from playwright.async_api import Browser, Page, expect

WAIT_MS = 20_000  # far less than the stretched poll: only an event can explain an update


@pytest.fixture
async def page(browser: Browser, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Page]:
    monkeypatch.setitem(environment().globals, "poll_ms", 600_000)  # a poll every 10 min
    context = await browser.new_context(viewport={"width": 1200, "height": 760})
    yield await context.new_page()
    await context.close()


async def test_job_page_and_jobs_list_update_from_events(
    dashboard: Dashboard, page: Page, client: Client, workers: WorkerFactory
) -> None:
    """The job page goes from queued to complete, and the jobs list shows a job enqueued
    after it was drawn, each without a poll or a reload."""
    job_id = await client.enqueue("test-sleep", [data_uri(b"x")] * 4, options={"seconds": 0.2})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(dashboard.at(f"/jobs/{job_id}"))
    await expect(page.locator("#job-state")).to_have_text("queued")
    await asyncio.sleep(0.5)  # the page's stream is open
    await asyncio.to_thread(workers, pipelines="tests.sample_pipelines")
    await expect(page.locator("#job-state")).to_have_text("complete", timeout=WAIT_MS)
    await expect(page.locator("#count-stored")).to_have_text("4")

    await page.goto(dashboard.at("/jobs"))
    await asyncio.sleep(0.5)
    later = await client.enqueue("text-stats", ["data:,later"], defer_s=3600)
    # within the listing's 2 s cache and a refresh, well before the 15 s safety poll
    await expect(page.locator(f"text={later}")).to_be_visible(timeout=6000)
    assert errors == []
