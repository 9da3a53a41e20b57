"""An exception the dashboard did not foresee is still an answer of the documented shape:
JSON for the API, a short page otherwise; never a traceback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from producer import ClientSettings
from producer.dashboard.app import create_app
from producer.dashboard.settings import DashboardSettings
from tests.dashboard.support import call


async def broken(request: web.Request) -> web.Response:
    raise KeyError("something nobody planned for")


@pytest.fixture
async def board(settings: ClientSettings) -> AsyncIterator[str]:
    """The dashboard's application with two routes that fail unexpectedly, on a free port."""
    app = create_app(DashboardSettings(**settings.model_dump(), _env_file=None))
    app.router.add_get("/api/broken", broken)
    app.router.add_get("/broken", broken)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def test_unexpected_errors_keep_the_error_shape(
    board: str, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """The API answers 500 {"error": "internal_error", "message"} naming only the exception's
    type; a page answers a short 500; the traceback goes to the log."""
    api = await call(session, "GET", board + "/api/broken")
    assert api.status == 500 and api.headers["Content-Type"].startswith("application/json")
    assert api.body == {
        "error": "internal_error",
        "message": "unexpected KeyError; the dashboard's log has the details",
    }
    page = await call(session, "GET", board + "/broken")
    assert page.status == 500 and "Traceback" not in page.body
    assert "nobody planned" not in page.body
    assert "something nobody planned for" in caplog.text
