"""A real headless browser for the dashboard tests: Debian's chromium driven by Playwright.

Never `playwright install` (it downloads a browser build, which cannot be had here): the
tests launch the system's chromium (`apt-get install -y chromium`), and skip, saying why, when
Playwright or chromium is missing or chromium will not start.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "images"  # shown in docs/dashboard.md


def chromium_path() -> str | None:
    found = [p for p in CHROMIUM_PATHS if Path(p).exists()]
    return found[0] if found else shutil.which("chromium")


def unavailable_reason() -> str | None:
    """Why no browser test can run here, or None if one can."""
    if importlib.util.find_spec("playwright") is None:
        return "Playwright for Python is not installed (the dev extra has it)"
    if chromium_path() is None:
        return "no chromium binary: `apt-get install -y chromium` (.ci/run installs it)"
    return None


@contextlib.asynccontextmanager
async def launch_browser() -> AsyncIterator[Browser]:
    """The browser, closed on exit; skips the test when it cannot be had."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        try:
            browser = await playwright.chromium.launch(executable_path=chromium_path(), args=ARGS)
        except PlaywrightError as exc:
            pytest.skip(f"chromium would not start: {exc.message.splitlines()[0]}")
        try:
            yield browser
        finally:
            await browser.close()


async def screenshot(page: Page, name: str) -> None:
    """Save a PNG to docs/images/ when SLUICE_SCREENSHOTS=1 (for docs/dashboard.md)."""
    if os.environ.get("SLUICE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(exist_ok=True)
        await page.screenshot(path=SCREENSHOTS / f"{name}.png")
