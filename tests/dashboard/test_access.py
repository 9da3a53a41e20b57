"""Who reaches the dashboard: only under a Host it answers to, with wrong tokens throttled per
address, sessions that end at logout, and a Secure cookie behind TLS."""

from __future__ import annotations

import aiohttp
import pytest

from producer.dashboard.hosts import HostCheck
from producer.dashboard.sessions import Sessions
from producer.dashboard.throttle import LoginThrottle
from tests.dashboard.conftest import StartDashboard
from tests.dashboard.support import TOKEN, Dashboard, call

ACT = {"X-Requested-With": "sluice"}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_foreign_host_is_refused_everywhere(
    dashboard: Dashboard, session: aiohttp.ClientSession
) -> None:
    """A DNS name the dashboard does not know gets 421 on pages, API, login and static files;
    IP addresses and localhost are answered."""
    port = dashboard.url.rsplit(":", 1)[1]
    for path in ("/", "/api/stats", "/login", "/static/dashboard.css", "/api/jobs/x"):
        foreign = await call(session, "GET", dashboard.at(path), headers={"Host": "evil.example"})
        assert foreign.status == 421, path
    api = await call(session, "GET", dashboard.at("/api/stats"), headers={"Host": "evil.example"})
    assert api.body["error"] == "misdirected_request"
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST.", "[::1]:8400"):
        reply = await call(session, "GET", dashboard.at("/api/stats"), headers={"Host": host})
        assert reply.status == 200, host


async def test_allowed_hosts_setting_names_more_hosts(
    start_dashboard: StartDashboard, session: aiohttp.ClientSession
) -> None:
    """Names in SLUICE_DASHBOARD_ALLOWED_HOSTS are answered, others still refused."""
    board = await start_dashboard(dashboard_allowed_hosts="dash.example, other.example")
    for host, status in (("Dash.Example:8400", 200), ("other.example", 200), ("x.example", 421)):
        reply = await call(session, "GET", board.at("/api/stats"), headers={"Host": host})
        assert reply.status == status, host


def test_host_check_rules() -> None:
    """Malformed Host values are refused; '*' answers any; no Host (HTTP/1.0) is answered."""
    check = HostCheck(frozenset({"localhost", "dash.example"}))
    assert not check.allows("evil@127.0.0.1")
    assert not check.allows("dash.example.evil.example")
    assert not check.allows("")
    assert check.allows(None) and check.allows("10.1.2.3:80") and check.allows("[fe80::1]")
    assert HostCheck(frozenset(), any_host=True).allows("anything.example")


async def test_logout_ends_the_session(
    dashboard: Dashboard, session: aiohttp.ClientSession
) -> None:
    """A cookie kept from before logout no longer acts, and no longer counts as logged in."""
    form = aiohttp.FormData({"token": TOKEN, "next": "/"})
    async with session.post(dashboard.at("/login"), data=form, allow_redirects=False) as reply:
        cookie = reply.cookies["sluice_session"].value
    assert TOKEN not in cookie
    kept = {"Cookie": f"sluice_session={cookie}", **ACT}
    before = await call(session, "POST", dashboard.at("/api/failed/retry"), headers=kept)
    assert before.status == 200
    async with session.post(dashboard.at("/logout"), allow_redirects=False) as reply:
        assert reply.status == 303
    after = await call(session, "POST", dashboard.at("/api/failed/retry"), headers=kept)
    assert after.status == 401


@pytest.mark.parametrize(("behind_tls", "secure"), [(False, False), (True, True)])
async def test_cookie_is_secure_behind_tls(
    start_dashboard: StartDashboard,
    session: aiohttp.ClientSession,
    behind_tls: bool,
    secure: bool,
) -> None:
    """SLUICE_DASHBOARD_BEHIND_TLS marks the login cookie Secure."""
    board = await start_dashboard(dashboard_behind_tls=behind_tls)
    form = aiohttp.FormData({"token": TOKEN, "next": "/"})
    async with session.post(board.at("/login"), data=form, allow_redirects=False) as reply:
        set_cookie = reply.headers["Set-Cookie"]
    assert ("Secure" in set_cookie) is secure
    assert "HttpOnly" in set_cookie and "SameSite=Strict" in set_cookie


async def test_wrong_tokens_are_throttled_per_address(
    dashboard: Dashboard, session: aiohttp.ClientSession
) -> None:
    """Ten wrong tokens, by form or bearer header, then even the right one gets 429 with
    Retry-After, at the form and in the API."""
    for attempt in range(10):
        wrong = f"wrong-{attempt}"
        if attempt % 2:
            form = aiohttp.FormData({"token": wrong, "next": "/"})
            async with session.post(dashboard.at("/login"), data=form) as refused:
                assert refused.status == 401
        else:
            api = await call(session, "POST", dashboard.at("/api/failed/retry"), token=wrong)
            assert api.status == 401
    right = aiohttp.FormData({"token": TOKEN, "next": "/"})
    async with session.post(dashboard.at("/login"), data=right, allow_redirects=False) as reply:
        assert reply.status == 429 and int(reply.headers["Retry-After"]) >= 1
    api = await call(session, "POST", dashboard.at("/api/failed/retry"), token=TOKEN)
    assert api.status == 429 and api.body["error"] == "too_many_attempts"
    assert (await call(session, "GET", dashboard.at("/api/stats"))).status == 200  # reads


def test_throttle_window_slides_and_is_per_address() -> None:
    """An address is refused at the limit until its oldest failure leaves the window; other
    addresses are not affected."""
    clock = Clock()
    throttle = LoginThrottle(max_failures=3, window_s=60.0, clock=clock)
    for _ in range(3):
        assert throttle.retry_after_s("10.0.0.1") is None
        throttle.failed("10.0.0.1")
        clock.now += 10
    assert throttle.retry_after_s("10.0.0.1") == 30
    assert throttle.retry_after_s("10.0.0.2") is None
    clock.now += 30
    assert throttle.retry_after_s("10.0.0.1") is None


def test_sessions_expire_and_close() -> None:
    """A session is valid until its age runs out or it is closed; unknown ids never are."""
    clock = Clock()
    sessions = Sessions(max_age_s=100, clock=clock)
    first, second = sessions.open(), sessions.open()
    assert first != second and sessions.valid(first) and not sessions.valid("guess")
    sessions.close(first)
    assert not sessions.valid(first) and sessions.valid(second)
    clock.now += 100
    assert not sessions.valid(second)
