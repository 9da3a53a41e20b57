"""A job's binary outputs over the API, the results heading of a running job, and durations
in plain units."""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from producer import Client
from producer.client.display import format_seconds
from producer.contract.wire import dumps
from producer.dashboard.render import ago
from producer.redis.typed import Redis
from tests.dashboard.support import Dashboard, call

PNG = b"\x89PNG\r\n\x1a\n fake image bytes"


async def store(redis: Redis, client: Client, job_id: str, records: list[dict[str, Any]]) -> None:
    """Records and blobs in the worker's format (see worker/stages/store.py)."""
    for record in records:
        blob = record.pop("_bytes", None)
        await redis.hset(client.keys.results(job_id), str(record["index"]), dumps(record))
        if blob is not None:
            await redis.hset(client.keys.blobs(job_id), str(record["index"]), blob)


def record(index: int, blob: str | None = None) -> dict[str, Any]:
    stored = {"index": index, "input": f"data:,{index}", "ok": True, "result": {}, "timings": {}}
    return {**stored, "blob": blob} if blob else stored


async def test_blob_route_serves_images_inline_and_the_rest_as_downloads(
    dashboard: Dashboard, session: aiohttp.ClientSession, client: Client, redis: Redis
) -> None:
    """An image comes with its type (inline, or attached with ?download=1); any other blob is
    an octet-stream attachment; a missing one is 404 and a bad index 400, as JSON errors."""
    svg = b"<svg onload=alert(1)>"
    records = [{**record(0, "png"), "_bytes": PNG}, {**record(1, "svg"), "_bytes": svg}, record(2)]
    await store(redis, client, "outs", records)
    await redis.hset(client.keys.job("outs"), mapping={"state": "complete", "total": 3})
    base = dashboard.at("/api/jobs/outs/results")
    async with session.get(f"{base}/0/blob") as reply:
        assert (reply.status, reply.content_type) == (200, "image/png")
        assert reply.headers["Content-Disposition"] == 'inline; filename="000000.png"'
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert await reply.read() == PNG
    async with session.get(f"{base}/0/blob?download=1") as reply:
        assert reply.headers["Content-Disposition"] == 'attachment; filename="000000.png"'
    async with session.get(f"{base}/1/blob") as reply:
        assert (reply.status, reply.content_type) == (200, "application/octet-stream")
        assert reply.headers["Content-Disposition"].startswith("attachment;")
    for path, status in [("2/blob", 404), ("9/blob", 404), ("x/blob", 400)]:
        missing = await call(session, "GET", f"{base}/{path}")
        assert missing.status == status and "message" in missing.body, path


async def test_results_heading_of_a_running_job_counts_what_is_stored(
    dashboard: Dashboard, session: aiohttp.ClientSession, client: Client, redis: Redis
) -> None:
    """While a job runs, its page says how many of the inputs shown are stored so far."""
    job_id = await client.enqueue("text-stats", ["data:,a", "data:,b", "data:,c"])
    # as a worker's claim leaves it: in progress, one unit held
    await redis.hset(client.keys.job(job_id), mapping={"state": "in_progress", "held": 1})
    await store(redis, client, job_id, [record(1)])
    page = await call(session, "GET", dashboard.at(f"/jobs/{job_id}"))
    assert "Results for inputs 1–3 of 3 (1 of 3 stored so far)" in page.body


def test_durations_read_in_plain_units() -> None:
    """Seconds under a minute, then the two largest units: never 1:51.92."""
    assert format_seconds(5.5) == "5.50 s"
    assert format_seconds(111.92) == "1 min 52 s"
    assert format_seconds(205.11) == "3 min 25 s"
    assert format_seconds(7530) == "2 h 5 min"
    assert format_seconds(90_000) == "1 d 1 h"
    assert ago(time.time() - 111.9) == "1 min 52 s ago"
    assert ago(time.time() - 4.2) == "4 s ago"
