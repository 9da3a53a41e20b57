"""The wire format from another language's point of view: plain Redis commands only."""

from __future__ import annotations

import time

import orjson
import pytest

from producer import Client, JobState
from producer.contract.keys import Keys
from producer.redis.typed import Redis
from tests.expected import text_stats
from tests.support.workers import WorkerFactory


async def raw_enqueue(redis: Redis, keys: Keys, job_id: str, envelope: bytes) -> None:
    """What README tells a non-Python service to do: SET the envelope, ZADD the id."""
    now_ms = int(time.time() * 1000)
    await redis.set(f"arq:job:{job_id}", envelope, px=86_400_000)
    await redis.zadd(keys.queue, {job_id: now_ms})


async def test_raw_redis_enqueue_runs(client: Client, redis: Redis, workers: WorkerFactory) -> None:
    """A job written with SET + ZADD, no Sluice code, runs and reports like any other."""
    envelope = orjson.dumps(
        {
            "t": 1,
            "f": "sluice",
            "a": [],
            "k": {"pipeline": "text-stats", "inputs": ["data:,hello%20raw%20world"], "options": {}},
            "et": int(time.time() * 1000),
        }
    )
    await raw_enqueue(redis, client.keys, "raw-1", envelope)
    queued = await client.status("raw-1")
    assert queued.state == JobState.QUEUED and queued.pipeline == "text-stats"
    workers()
    status = await client.wait("raw-1", timeout_s=60)
    assert status.state == JobState.COMPLETE
    [record] = [r async for r in client.results("raw-1")]
    assert record.result == text_stats(b"hello raw world")
    # the status hash is readable with plain HGETALL too
    fields = await redis.hgetall(client.keys.job("raw-1"))
    assert fields[b"state"] == b"complete" and fields[b"stored"] == b"1"
    # arq's own result envelope is JSON too: no pickle anywhere
    result = orjson.loads(await redis.get(client.keys.arq_result("raw-1")) or b"")
    assert result["s"] is True and result["r"] == {"state": "complete", "total": 1}


@pytest.mark.parametrize(
    ("envelope", "message"),
    [
        (b"{not json", "not valid JSON"),
        (
            b'{"t":1,"f":"sluice","a":[],"k":{"pipeline":"nope","inputs":["data:,x"]},"et":1}',
            "unknown pipeline 'nope'",
        ),
        (
            b'{"t":1,"f":"sluice","a":[],"k":{"pipeline":"text-stats","inputs":"data:,x"},"et":1}',
            "inputs: Input should be a valid list",
        ),
        (
            b'{"t":1,"f":"sluice","a":[],"k":{"pipeline":"text-stats","inputs":[]},"et":1}',
            "no inputs",
        ),
        (b"[1, 2]", "must be a JSON object"),
    ],
)
async def test_malformed_raw_jobs_fail_clearly(
    client: Client, redis: Redis, workers: WorkerFactory, envelope: bytes, message: str
) -> None:
    """A malformed job that reaches Redis is marked failed with the reason; the worker goes on."""
    await raw_enqueue(redis, client.keys, "bad", envelope)
    await raw_enqueue(
        redis,
        client.keys,
        "good",
        b'{"t":1,"f":"sluice","a":[],"k":{"pipeline":"text-stats","inputs":["data:,ok"]},"et":1}',
    )
    workers()
    bad = await client.wait("bad", timeout_s=60)
    assert bad.state == JobState.FAILED
    assert message in (bad.error or "")
    good = await client.wait("good", timeout_s=60)
    assert good.state == JobState.COMPLETE


async def test_a_count_absent_from_the_status_hash_reads_as_zero(
    client: Client, redis: Redis
) -> None:
    """A job just enqueued holds no zero counts (docs/wire-format.md: absent is 0); the
    Client, and so `sluice status`, the dashboard and webhooks, read each as 0."""
    job = await client.enqueue("text-stats", ["data:,a", "data:,b"])
    fields = await redis.hgetall(client.keys.job(job))
    assert not {b"fetched", b"transformed", b"stored", b"failed"} & set(fields)
    status = await client.status(job)
    counts = {status.fetched, status.transformed, status.stored, status.failed}
    assert status.total == 2 and counts == {0}
