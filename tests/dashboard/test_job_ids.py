"""Job ids the dashboard did not choose: escaped in every URL built from them, refused where a
path names one no job can have, and listed without fail even when not UTF-8."""

from __future__ import annotations

import re
import string
from urllib.parse import unquote

import aiohttp
from ada_url import URL
from hypothesis import given
from hypothesis import strategies as st

from producer import Client, JobState
from producer.contract.wire import now_ms
from producer.dashboard.job_paths import actionable, path_segment
from producer.redis.typed import Redis
from tests.dashboard.conftest import StartDashboard
from tests.dashboard.support import TOKEN, Dashboard, call

BASE = "http://127.0.0.1:8400/failed"
ACTION = re.compile(r'data-action="([^"]*)"')
TRICKY = ["x/../../failed", "../jobs/other", "a%2Fb", "a?b#c", "..", ".", "a\\b", "x\x1b[31m"]


@given(st.text(alphabet=string.printable + "é\u2215\uff0e", min_size=1, max_size=40))
def test_an_escaped_id_is_always_one_segment(job_id: str) -> None:
    """Every id offered actions stays one path segment after a browser resolves the URL, and
    that segment decodes back to the id."""
    if not actionable(job_id):
        return
    resolved = URL(f"/api/jobs/{path_segment(job_id)}/retry", BASE).pathname
    parts = resolved.split("/")
    assert parts[:3] == ["", "api", "jobs"] and parts[4:] == ["retry"], resolved
    assert unquote(parts[3]) == job_id


def test_ids_that_are_not_one_segment_are_offered_nothing() -> None:
    """Ids with '/', dot segments and the like get no links and no buttons."""
    assert not any(actionable(job_id) for job_id in TRICKY)
    assert actionable("job-1.2_x")


async def write_failed(redis: Redis, client: Client, raw_id: bytes) -> None:
    """A failed job written with raw commands, as another language might (in its shard)."""
    keys = client.keys.for_job(raw_id.decode("utf-8", "surrogateescape"))
    await redis.hset(keys.job("").encode() + raw_id, mapping={"state": "failed"})
    await redis.zadd(keys.failed, {raw_id: now_ms()})


def actions_in(page: str) -> list[str]:
    """Where the page's buttons would send their requests, resolved as a browser does."""
    return [URL(unquote_html(a), BASE).pathname for a in ACTION.findall(page)]


def unquote_html(text: str) -> str:
    return text.replace("&amp;", "&").replace("&#34;", '"').replace("&#39;", "'")


async def logged_in(session: aiohttp.ClientSession, board: Dashboard) -> None:
    form = aiohttp.FormData({"token": TOKEN, "next": "/"})
    async with session.post(board.at("/login"), data=form, allow_redirects=False) as reply:
        assert reply.status == 303


async def test_tricky_ids_never_aim_an_action_elsewhere(
    dashboard: Dashboard, session: aiohttp.ClientSession, client: Client, redis: Redis
) -> None:
    """Jobs whose ids would resolve to other URLs are listed, with no action on them; the
    one valid job's buttons aim at that job alone."""
    for job_id in TRICKY:
        await write_failed(redis, client, job_id.encode())
    good = await client.enqueue("text-stats", ["data:,x"], job_id="good-1")
    await client.cancel(good)
    await logged_in(session, dashboard)
    for path in ("/failed", "/jobs", "/failed?partial=1", "/jobs?partial=1"):
        page = await call(session, "GET", dashboard.at(path))
        assert page.status == 200, path
        assert "x/../../failed" in page.body, path
        allowed = {"/api/failed/retry", "/api/jobs/good-1", "/api/jobs/good-1/retry"}
        assert set(actions_in(page.body)) <= allowed, path
    failed = (await call(session, "GET", dashboard.at("/failed"))).body
    assert failed.count('data-action="/api/failed/retry"') == 1  # the "retry all" button


async def test_paths_naming_no_possible_job_are_refused(
    dashboard: Dashboard, session: aiohttp.ClientSession, client: Client, redis: Redis
) -> None:
    """An id that cannot be one path segment gets a JSON 422 and touches nothing."""
    other = await client.enqueue("text-stats", ["data:,x"], job_id="other")
    await client.cancel(other)
    await write_failed(redis, client, b"x/../../failed")
    for method, path in (
        ("POST", "/api/jobs/x%2F..%2F..%2Ffailed/retry"),
        ("DELETE", "/api/jobs/..%2Fjobs%2Fother"),
        ("GET", "/api/jobs/a%2Fb"),
        ("GET", "/api/jobs/a%2Fb/results"),
        ("POST", "/api/jobs/a%2Fb/cancel"),
    ):
        reply = await call(session, method, dashboard.at(path), token=TOKEN)
        assert reply.status == 422, (method, path)
        assert reply.body["error"] == "invalid_job", (method, path)
    dots = await call(session, "GET", dashboard.at("/api/jobs/%2e%2e"), token=TOKEN)
    assert dots.status in (404, 422) and "error" in dots.body
    assert (await client.status(other)).state == JobState.CANCELLED
    assert await redis.zscore(client.keys.failed, "x/../../failed") is not None
    page = await call(session, "GET", dashboard.at("/jobs/x%2F..%2Fy"))
    assert page.status == 422


async def test_ids_that_are_not_utf8_are_listed_everywhere(
    start_dashboard: StartDashboard, session: aiohttp.ClientSession, client: Client, redis: Redis
) -> None:
    """A failed job and a queued one whose ids are not UTF-8 (written raw) are listed on every
    page and API listing, shown with \\xNN, with no action offered on them."""
    board = await start_dashboard()
    await write_failed(redis, client, b"bad-\xff-id")
    queued = client.keys.for_job(b"queued-\xfe".decode("utf-8", "surrogateescape"))
    await redis.zadd(queued.queue, {b"queued-\xfe": now_ms()})
    await redis.zadd(client.keys.workers, {b"worker-\xfa": now_ms()})
    await redis.hset(client.keys.worker("").encode() + b"worker-\xfa", mapping={"pid": "1"})
    await logged_in(session, board)
    for path in ("/", "/?partial=1", "/workers", "/jobs", "/failed", "/jobs?partial=1"):
        page = await call(session, "GET", board.at(path))
        assert page.status == 200, path
        assert "/api/jobs/bad" not in page.body and "/jobs/bad" not in page.body, path
        if path.startswith(("/jobs", "/failed")):
            assert "bad-\\xff-id" in page.body, path
    listed = await call(session, "GET", board.at("/api/jobs"))
    assert listed.status == 200
    states = {job["job_id"]: job["state"] for job in listed.body["jobs"]}
    assert states == {"bad-\\xff-id": "failed", "queued-\\xfe": "queued"}
    failed = await call(session, "GET", board.at("/api/failed"))
    assert [job["job_id"] for job in failed.body] == ["bad-\\xff-id"]
    workers = await call(session, "GET", board.at("/api/workers"))
    assert [worker["pid"] for worker in workers.body] == [1]
    retried = await call(session, "POST", board.at("/api/failed/retry"), token=TOKEN)
    assert retried.body["retried"] == [] and "bad-\\xff-id" in retried.body["errors"]
