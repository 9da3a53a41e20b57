"""What anyone may have written to Redis never stops a reader: a status hash whose numbers
are not numbers, a pipeline registry entry that is not JSON."""

from __future__ import annotations

import aiohttp

from producer import Client, JobState
from producer.contract.wire import now_ms
from producer.redis.typed import Redis
from tests.dashboard.support import Dashboard, call


async def test_garbage_numbers_read_as_none(
    dashboard: Dashboard, session: aiohttp.ClientSession, client: Client, redis: Redis
) -> None:
    """Counts and times that are not finite numbers read as 0 / none, on every reader."""
    numbers = {"total": "abc", "stored": "1e999", "failed": "NaN", "fetch_s": "-inf"}
    times = {"finished_at": "inf", "enqueued_at": "yesterday"}
    garbage = {"state": "failed", **numbers, **times}
    await redis.hset(client.keys.job("junk"), mapping=garbage)
    await redis.zadd(client.keys.failed, {"junk": now_ms()})
    status = await client.status("junk")
    assert status.state == JobState.FAILED
    assert (status.total, status.stored, status.failed, status.finished_at) == (0, 0, 0, None)
    for path in ("/", "/jobs", "/failed", "/jobs/junk", "/api/jobs", "/api/failed"):
        reply = await call(session, "GET", dashboard.at(path))
        assert reply.status == 200, path
    assert (await call(session, "GET", dashboard.at("/api/jobs/junk"))).body["total"] == 0


async def test_unreadable_registry_entries_are_left_out(
    dashboard: Dashboard, session: aiohttp.ClientSession, client: Client, redis: Redis
) -> None:
    """A registry entry that is not JSON is left out; the others are listed."""
    await redis.hset(client.keys.pipelines, mapping={"good": b'{"options": {}}', b"bad\xff": b"{"})
    assert await client.pipelines() == {"good": {"options": {}}}
    for path in ("/jobs", "/api/pipelines"):
        assert (await call(session, "GET", dashboard.at(path))).status == 200, path
