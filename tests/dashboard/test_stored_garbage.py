"""What anyone may have written to Redis never stops a reader: a status hash whose numbers
are not numbers, a pipeline registry entry that is not JSON."""

from __future__ import annotations

import re

import aiohttp

from producer import Client, JobState
from producer.contract.wire import dumps, now_ms
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


# what a raw writer may leave as an input's record, and the error a reader shows in its place
UNREADABLE_RECORDS = {
    1: (b"\xff\xfe not even text", r"not JSON: .*UTF-8"),
    2: (b"{not json", r"not JSON: "),
    3: (b"[1, 2]", r"record: Input should be a valid dictionary"),
    4: (b'{"index": "two", "ok": "maybe"}', r"index: Input should be a valid integer"),
}


async def test_unreadable_records_read_as_failed_records(
    dashboard: Dashboard, session: aiohttp.ClientSession, client: Client, redis: Redis
) -> None:
    """A record that is not UTF-8, not JSON or not a record's shape reads as a failed record
    saying so, in the client, the job page and the API; the good records beside it read."""
    good = {"index": 0, "input": "data:,a", "ok": True, "result": {"n": 1}, "timings": {}}
    fields = {"0": dumps(good), **{str(i): raw for i, (raw, _) in UNREADABLE_RECORDS.items()}}
    await redis.hset(client.keys.job("junk"), mapping={"state": "complete", "total": "5"})
    await redis.hset(client.keys.results("junk"), mapping=fields)
    records = [r async for r in client.results("junk")]
    assert records[0].result == {"n": 1}
    assert [r.index for r in records] == [0, *UNREADABLE_RECORDS]
    for record, (_, pattern) in zip(records[1:], UNREADABLE_RECORDS.values(), strict=True):
        assert not record.ok
        assert re.fullmatch(
            rf"the stored record of input {record.index} cannot be read: {pattern}.*",
            record.error or "",
        ), record.error
    for path in ("/jobs/junk", "/jobs/junk?partial=1"):
        assert (await call(session, "GET", dashboard.at(path))).status == 200, path
    reply = await call(session, "GET", dashboard.at("/api/jobs/junk/results"))
    assert reply.status == 200
    assert [line["ok"] for line in reply.body["records"]] == [True] + [False] * 4


async def test_a_heartbeat_key_that_is_not_a_hash_is_left_out(
    dashboard: Dashboard, session: aiohttp.ClientSession, client: Client, redis: Redis
) -> None:
    """A live worker's heartbeat key that another tool made a string is left out of the
    workers list; the others are listed, on the overview and the workers page too."""
    await redis.zadd(client.keys.workers, {"ghost": now_ms(), "real": now_ms()})
    await redis.set(client.keys.worker("ghost"), "not a hash")
    await redis.hset(client.keys.worker("real"), mapping={"id": "real", "pid": "7"})
    assert [(w.id, w.pid) for w in await client.workers()] == [("real", 7)]
    for path in ("/", "/workers", "/api/workers"):
        assert (await call(session, "GET", dashboard.at(path))).status == 200, path
