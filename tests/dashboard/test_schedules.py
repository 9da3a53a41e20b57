"""The schedules over HTTP: GET /api/schedules against its OpenAPI schema, and the
dashboard's Schedules page."""

from __future__ import annotations

import aiohttp

from producer import ClientSettings
from tests.dashboard.support import Dashboard, call
from tests.dashboard.test_api import check_schema
from tests.schedules.helpers import publish_and_fire


async def test_the_api_and_the_page_show_schedules(
    settings: ClientSettings, dashboard: Dashboard, session: aiohttp.ClientSession
) -> None:
    """GET /api/schedules matches its OpenAPI schema; the Schedules page lists them with a
    link to the last job."""
    job_id = await publish_and_fire(settings)
    listed = await call(session, "GET", dashboard.at("/api/schedules"))
    assert listed.status == 200
    for entry in listed.body:
        check_schema(entry, "ScheduleInfo")
    assert [(s["name"], s["last_job"], s["last_state"]) for s in listed.body] == [
        ("nightly", job_id, "queued"),
        ("often", None, None),
    ]
    page = await call(session, "GET", dashboard.at("/schedules"))
    assert page.status == 200
    assert 'id="schedules-table"' in page.body and f'href="/jobs/{job_id}"' in page.body
    assert "every 60 s" in page.body
