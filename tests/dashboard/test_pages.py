"""The dashboard's pages over plain HTTP: listing, login, secrets, headers, action guards."""

from __future__ import annotations

import aiohttp

from producer import Client, ClientSettings
from producer.redis.typed import Redis
from tests.dashboard.conftest import StartDashboard
from tests.dashboard.support import TOKEN, Dashboard, call

PAGES = ("/", "/jobs", "/failed", "/workers", "/schedules", "/login")


async def login(session: aiohttp.ClientSession, dashboard: Dashboard, token: str) -> int:
    """Log in with the form; the session keeps the cookie. Returns the form's status."""
    form = aiohttp.FormData({"token": token, "next": "/jobs"})
    async with session.post(dashboard.at("/login"), data=form, allow_redirects=False) as reply:
        return reply.status


async def test_pages_never_show_the_redis_password(
    start_dashboard: StartDashboard,
    session: aiohttp.ClientSession,
    client: Client,
    settings: ClientSettings,
) -> None:
    """Every page, live region and API answer shows the server with its credentials hidden."""
    url = str(settings.redis_url).replace("redis://", "redis://default:s3cret-pw@")
    board = await start_dashboard(redis_url=url)
    job_id = await client.enqueue("text-stats", ["data:,x"])
    paths = [*PAGES, f"/jobs/{job_id}", "/?partial=1", f"/jobs/{job_id}?partial=1"]
    for path in [*paths, "/api/stats", f"/api/jobs/{job_id}", "/api/openapi.json"]:
        reply = await call(session, "GET", board.at(path))
        assert reply.status == 200, path
        assert "s3cret-pw" not in str(reply.body), path
    overview = await call(session, "GET", board.at("/"))
    assert "redis://***@127.0.0.1" in overview.body
    assert TOKEN not in overview.body


async def test_every_answer_carries_security_headers(
    dashboard: Dashboard, session: aiohttp.ClientSession
) -> None:
    """Pages and API answers forbid inline scripts and framing, and are never cached."""
    for path in ("/", "/api/stats", "/login", "/api/jobs/nope"):
        reply = await call(session, "GET", dashboard.at(path))
        csp = reply.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["Cache-Control"] == "no-store"


async def test_jobs_page_filters_searches_and_pages(
    dashboard: Dashboard, session: aiohttp.ClientSession, client: Client
) -> None:
    """The job list filters by state and pipeline, finds ids by part, and pages, newest first."""
    stats_ids = [
        await client.enqueue("text-stats", [f"data:,{i}"], job_id=f"s-{i}") for i in range(3)
    ]
    thumb = await client.enqueue("thumbnail", ["data:,p"], job_id="thumb-abc")
    await client.cancel(stats_ids[0])
    listed = await call(session, "GET", dashboard.at("/api/jobs?pipeline=text-stats&per_page=2"))
    assert [j["job_id"] for j in listed.body["jobs"]] == ["s-2", "s-1"]
    assert (listed.body["matched"], listed.body["pages"]) == (3, 2)
    second = "/api/jobs?pipeline=text-stats&per_page=2&page=2"
    older = await call(session, "GET", dashboard.at(second))
    assert [j["job_id"] for j in older.body["jobs"]] == ["s-0"]
    cancelled = await call(session, "GET", dashboard.at("/api/jobs?state=cancelled"))
    assert [j["job_id"] for j in cancelled.body["jobs"]] == ["s-0"]
    found = await call(session, "GET", dashboard.at("/api/jobs?q=ABC"))
    assert [j["job_id"] for j in found.body["jobs"]] == [thumb]

    page = await call(session, "GET", dashboard.at("/jobs?state=queued&partial=1"))
    assert 'data-job="s-1"' in page.body and 'data-job="s-2"' in page.body
    assert 'data-job="s-0"' not in page.body
    assert "<html" not in page.body  # a live region alone, not the whole page
    whole = await call(session, "GET", dashboard.at("/jobs?q=thumb"))
    assert 'data-job="thumb-abc"' in whole.body and 'data-job="s-1"' not in whole.body
    overview = await call(session, "GET", dashboard.at("/?partial=1"))
    assert '<span class="figure" id="count-queued">3</span>' in overview.body
    assert '<span class="figure" id="count-cancelled">1</span>' in overview.body


async def test_actions_need_a_login_and_the_page_header(
    dashboard: Dashboard, session: aiohttp.ClientSession, client: Client
) -> None:
    """Action buttons show only once logged in; the cookie alone, without the page's
    X-Requested-With header, cannot act (a cross-site form cannot set it)."""
    job_id = await client.enqueue("text-stats", ["data:,x"])
    page = dashboard.at(f"/jobs/{job_id}")
    anonymous = await call(session, "GET", page)
    assert 'id="cancel"' not in anonymous.body and "log in to act" in anonymous.body

    assert await login(session, dashboard, "not-the-token-at-all") == 401
    assert await login(session, dashboard, TOKEN) == 303
    assert 'id="cancel"' in (await call(session, "GET", page)).body
    cancel = dashboard.at(f"/api/jobs/{job_id}/cancel")
    assert (await call(session, "POST", cancel)).status == 401
    header = {"X-Requested-With": "sluice"}
    assert (await call(session, "POST", cancel, headers=header)).status == 200

    async with session.post(dashboard.at("/logout"), allow_redirects=False) as out:
        assert out.status == 303
    assert 'id="delete"' not in (await call(session, "GET", page)).body


async def test_login_goes_back_only_to_this_site(
    dashboard: Dashboard, session: aiohttp.ClientSession
) -> None:
    """After logging in you land on the page you came from, never on another host."""
    for target, landed in (("/failed", "/failed"), ("//evil.example", "/"), ("https://x.y", "/")):
        form = aiohttp.FormData({"token": TOKEN, "next": target})
        async with session.post(dashboard.at("/login"), data=form, allow_redirects=False) as r:
            assert (r.status, r.headers["Location"]) == (303, landed)


async def test_read_only_pages_offer_no_actions(
    start_dashboard: StartDashboard, session: aiohttp.ClientSession, client: Client, redis: Redis
) -> None:
    """A read-only dashboard says so and shows no action even to a logged-in user."""
    board = await start_dashboard(dashboard_read_only=True)
    job_id = await client.enqueue("text-stats", ["data:,x"])
    assert await login(session, board, TOKEN) == 303
    page = (await call(session, "GET", board.at(f"/jobs/{job_id}"))).body
    assert 'id="mode">read-only' in page
    assert "data-action" not in page
    reply = await call(session, "POST", board.at(f"/api/jobs/{job_id}/cancel"), token=TOKEN)
    assert reply.status == 403
    assert await redis.zcard(client.keys.queue) == 1
