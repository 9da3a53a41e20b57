"""Fixtures for the dashboard tests: dashboards in this test's loop, HTTP, a headless browser."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiohttp import web

from producer import ClientSettings
from producer.dashboard.app import create_app
from producer.dashboard.settings import DashboardSettings
from tests.dashboard.browser import launch_browser
from tests.dashboard.process import DashboardProcess, dashboard_process
from tests.dashboard.support import TOKEN, Dashboard
from tests.support.servers import Server

if TYPE_CHECKING:
    from playwright.async_api import Browser

StartDashboard = Callable[..., Awaitable[Dashboard]]


@pytest.fixture
async def start_dashboard(settings: ClientSettings) -> AsyncIterator[StartDashboard]:
    """Start dashboards on free ports with ``await start_dashboard(**settings)``.

    Each gets the test's server and namespace, and the token `TOKEN` unless told otherwise.
    """
    runners: list[web.AppRunner] = []

    async def start(**overrides: Any) -> Dashboard:
        values: dict[str, Any] = {
            "redis_url": settings.redis_url,
            "namespace": settings.namespace,
            "data_dir": settings.data_dir,
            "shards": settings.shards,
            "dashboard_token": TOKEN,
            **overrides,
        }
        config = DashboardSettings(**values, _env_file=None)
        runner = web.AppRunner(create_app(config, sample_s=0.5), access_log=None)
        await runner.setup()
        runners.append(runner)
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return Dashboard(f"http://127.0.0.1:{runner.addresses[0][1]}", config)

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
async def dashboard(start_dashboard: StartDashboard) -> Dashboard:
    """A dashboard with the token set, actions on."""
    return await start_dashboard()


@pytest.fixture(scope="module")
def served(server: Server) -> Iterator[DashboardProcess]:
    """A real `sluice dashboard` process for the module, writes enabled (`TOKEN`), in a
    namespace of its own: for tests that call it from synchronous code (property tests)."""
    namespace = f"served{uuid.uuid4().hex[:8]}"
    with dashboard_process(
        redis_url=server.url, namespace=namespace, dashboard_token=TOKEN
    ) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session (no cookies kept between tests)."""
    jar = aiohttp.CookieJar(unsafe=True)  # keep cookies from 127.0.0.1 too
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60), cookie_jar=jar) as s:
        yield s


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's chromium, headless, driven by Playwright; skips with the reason if none."""
    async with launch_browser() as launched:
        yield launched
