"""The dashboard on a phone's screen (375 px wide) in a real headless browser, and a job's
binary outputs previewed on its page."""

from __future__ import annotations

import base64
import io

import pytest

from producer import Client, ClientSettings, JobState
from tests.dashboard.support import Dashboard
from tests.schedules.helpers import publish_and_fire
from tests.support.workers import WorkerFactory

pytest.importorskip("playwright", reason="Playwright for Python is not installed (dev extra)")
pytest.importorskip("PIL", reason="Pillow (the worker extra) makes the test images")
from PIL import Image
from playwright.async_api import Browser, Page, ViewportSize

PHONE: ViewportSize = {"width": 375, "height": 740}
# the elements that stick out on the right: what a failure names
WIDER_THAN_THE_SCREEN = """
[...document.querySelectorAll("body *")]
  .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
  .map(e => `${e.tagName}#${e.id}.${e.className} ${(e.textContent || "").slice(0, 30)}`)
"""


def png_uri(width: int, height: int) -> str:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


async def assert_no_sideways_scroll(page: Page, path: str) -> None:
    """The page at ``path`` is no wider than the screen; else say what sticks out."""
    sideways = await page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    wide = await page.evaluate(WIDER_THAN_THE_SCREEN)
    assert sideways <= 0, f"{path} is {sideways} px wider than the screen: {wide[:8]}"


async def test_pages_fit_a_phone_screen(
    dashboard: Dashboard, browser: Browser, client: Client, workers: WorkerFactory
) -> None:
    """At 375 px, no page scrolls sideways: the header wraps and tables fit."""
    workers()
    job_id = await client.enqueue("thumbnail", [png_uri(40, 30)], job_id="phone-job-0123456789")
    assert (await client.wait(job_id, timeout_s=60)).state == JobState.COMPLETE
    context = await browser.new_context(viewport=PHONE)
    page = await context.new_page()
    try:
        for path in ("/", "/workers", "/jobs", f"/jobs/{job_id}", "/failed"):
            await page.goto(dashboard.at(path))
            await assert_no_sideways_scroll(page, path)
    finally:
        await context.close()


async def test_the_schedules_page_fits_a_phone_screen(
    settings: ClientSettings, dashboard: Dashboard, browser: Browser
) -> None:
    """At 375 px, the Schedules page, with a schedule and its last job, does not scroll
    sideways."""
    await publish_and_fire(settings)
    context = await browser.new_context(viewport=PHONE)
    page = await context.new_page()
    try:
        await page.goto(dashboard.at("/schedules"))
        assert await page.locator("#schedules-table tr.schedule").count() == 2
        await assert_no_sideways_scroll(page, "/schedules")
    finally:
        await context.close()


async def test_job_page_previews_and_offers_binary_outputs(
    dashboard: Dashboard, browser: Browser, client: Client, workers: WorkerFactory
) -> None:
    """A thumbnail job's page shows each output as an image the browser decoded, and a link
    that downloads it under its file name."""
    workers()
    job_id = await client.enqueue("thumbnail", [png_uri(64, 48), png_uri(30, 60)])
    assert (await client.wait(job_id, timeout_s=60)).state == JobState.COMPLETE
    context = await browser.new_context(viewport={"width": 1200, "height": 760})
    page = await context.new_page()
    try:
        await page.goto(dashboard.at(f"/jobs/{job_id}"))
        thumbs = page.locator("#results img.thumb")
        assert await thumbs.count() == 2
        await page.wait_for_function(
            "[...document.querySelectorAll('#results img.thumb')].every(i => i.naturalWidth > 0)"
        )
        sizes = await thumbs.evaluate_all("all => all.map(i => [i.naturalWidth, i.naturalHeight])")
        assert sizes == [[64, 48], [30, 60]]  # within the default 256x256 box: kept as they are
        async with page.expect_download() as caught:
            await page.locator("#results a.download").first.click()
        download = await caught.value
        assert download.suggested_filename == "000000.png"
    finally:
        await context.close()
