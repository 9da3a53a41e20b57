"""``GET /api/events``: the job event stream as server-sent events, resumed from
Last-Event-ID, read under the same access rules as the other reads."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from producer import Client
from tests.dashboard.conftest import StartDashboard
from tests.dashboard.support import TOKEN, Dashboard


async def messages(
    response: aiohttp.ClientResponse, count: int, timeout_s: float = 10.0
) -> list[dict[str, Any]]:
    """The next ``count`` SSE messages (id and parsed data); comments and retry skipped."""
    found: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    deadline = time.monotonic() + timeout_s
    while len(found) < count:
        line = await asyncio.wait_for(response.content.readline(), deadline - time.monotonic())
        text = line.decode().rstrip("\n")
        if text.startswith("id: "):
            current["id"] = text[4:]
        elif text.startswith("data: "):
            current["data"] = json.loads(text[6:])
        elif text == "" and "data" in current:
            found.append(current)
            current = {}
    return found


async def test_events_stream_as_sse_and_resume_from_last_event_id(
    dashboard: Dashboard, session: aiohttp.ClientSession, client: Client
) -> None:
    """A job enqueued while a reader listens arrives as one message (id = stream id and
    position, data = the event); a reader that comes back with Last-Event-ID gets only what
    came after."""
    async with session.get(dashboard.at("/api/events")) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        await asyncio.sleep(0.3)  # the stream is read from now on
        first = await client.enqueue("text-stats", ["data:,a"])
        [message] = await messages(response, 1)
    assert message["data"]["job"] == first and message["data"]["type"] == "enqueued"
    assert message["id"] == f"{message['data']['id']}/0"
    second = await client.enqueue("text-stats", ["data:,b"])
    await client.cancel(second)
    headers = {"Last-Event-ID": message["id"]}
    async with session.get(dashboard.at("/api/events"), headers=headers) as response:
        resumed = await messages(response, 2)
    assert [(m["data"]["job"], m["data"]["type"]) for m in resumed] == [
        (second, "enqueued"),
        (second, "cancelled"),
    ]
    query = f"/api/events?since=0&job={second}&type=cancelled"
    async with session.get(dashboard.at(query)) as response:
        [only] = await messages(response, 1)
    assert only["data"]["type"] == "cancelled"


async def test_a_resume_within_an_entry_of_several_jobs_loses_none(
    dashboard: Dashboard, session: aiohttp.ClientSession, client: Client
) -> None:
    """enqueue_many writes one entry naming every job: a reader that left after its first
    message comes back with that id as Last-Event-ID and gets the other jobs' events."""
    ids = await client.enqueue_many("text-stats", [["data:,a"], ["data:,b"], ["data:,c"]])
    async with session.get(dashboard.at("/api/events?since=0&type=enqueued")) as response:
        first, *rest = await messages(response, 3)
    entry = first["data"]["id"]
    assert [m["id"] for m in (first, *rest)] == [f"{entry}/{k}" for k in range(3)]
    assert [m["data"]["job"] for m in (first, *rest)] == ids
    headers = {"Last-Event-ID": first["id"]}
    async with session.get(dashboard.at("/api/events?type=enqueued"), headers=headers) as response:
        resumed = await messages(response, 2)
    assert [(m["id"], m["data"]["job"]) for m in resumed] == [
        (m["id"], m["data"]["job"]) for m in rest
    ]
    query = f"/api/events?type=enqueued&since={rest[1]['id']}"
    later = await client.enqueue("text-stats", ["data:,d"])
    async with session.get(dashboard.at(query)) as response:
        [after] = await messages(response, 1)
    assert after["data"]["job"] == later  # past the whole entry, nothing of it again


async def test_events_refuse_a_bad_query_and_need_the_login_when_reads_do(
    start_dashboard: StartDashboard, session: aiohttp.ClientSession
) -> None:
    """A type or since that is none: 400 naming it; with SLUICE_DASHBOARD_REQUIRE_LOGIN, 401
    without the token and a stream with it."""
    dashboard = await start_dashboard(dashboard_require_login=True)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with session.get(dashboard.at("/api/events?type=done"), headers=auth) as response:
        assert response.status == 400 and "no event type 'done'" in await response.text()
    async with session.get(dashboard.at("/api/events?since=x"), headers=auth) as response:
        assert response.status == 400 and "is not an event id" in await response.text()
    async with session.get(dashboard.at("/api/events?since=1-0/x"), headers=auth) as response:
        assert response.status == 400 and "1733390000000-0/2" in await response.text()
    async with session.get(dashboard.at("/api/events")) as response:
        assert response.status == 401
    async with session.get(dashboard.at("/api/events"), headers=auth) as response:
        assert response.status == 200
