"""The dashboard never shows a Redis credential, whatever form it took in the URL."""

from __future__ import annotations

import re

import aiohttp
import pytest

from producer import Client, ClientSettings
from tests.dashboard.conftest import StartDashboard
from tests.dashboard.support import call

SECRET = "Qz-s3cret-77"
FORMS = ("userinfo", "query")


def with_credentials(url: str, form: str) -> str:
    """The test server's URL (``redis://host:port``) carrying SECRET in the given form; the
    passwordless default user accepts any password."""
    if form == "userinfo":
        return url.replace("redis://", f"redis://default:{SECRET}@")
    return f"{url}/0?username=default&password={SECRET}"


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("require_login", [False, True])
async def test_pages_hide_every_credential_form(
    start_dashboard: StartDashboard,
    session: aiohttp.ClientSession,
    client: Client,
    settings: ClientSettings,
    form: str,
    require_login: bool,
) -> None:
    """Every page (the open /login too, with or without required login) and API answer shows
    the server with its credentials hidden."""
    url = with_credentials(str(settings.redis_url), form)
    board = await start_dashboard(redis_url=url, dashboard_require_login=require_login)
    job_id = await client.enqueue("text-stats", ["data:,x"])
    paths = ["/", "/jobs", "/failed", "/workers", "/login", f"/jobs/{job_id}", "/?partial=1"]
    for path in [*paths, "/api/stats", f"/api/jobs/{job_id}", "/api/openapi.json"]:
        reply = await call(session, "GET", board.at(path))
        assert reply.status in (200, 303, 401), path
        assert SECRET not in str(reply.body) and SECRET not in str(reply.headers), path
    login = await call(session, "GET", board.at("/login"))
    assert re.search(r"redis://(\*\*\*@)?127\.0\.0\.1:\d+", login.body)
