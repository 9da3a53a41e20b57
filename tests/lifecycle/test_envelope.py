"""Where a job's envelope lives: a Client's job keeps it in its status hash (``envelope``)
and never has an ``arq:job:{id}`` key; a job written with raw commands keeps it there, and
the claim reads it from whichever holds it."""

from __future__ import annotations

import asyncio
import importlib
import time

import orjson

from producer import Client, ClientSettings, JobState
from producer.contract.status import Field
from producer.redis.typed import Redis
from tests.lifecycle.support import claimer, end, store
from worker.lifecycle.claim import Unit
from worker.lifecycle.endings import Endings
from worker.lifecycle.job import Jobs


async def enqueued(client: Client, redis: Redis) -> tuple[str, bytes]:
    """A one-input job ``client`` enqueued, and the envelope its status hash holds (it has
    no ``arq:job:{id}`` key)."""
    job = await client.enqueue("text-stats", ["data:,a"])
    envelope = await redis.hget(client.keys.job(job), Field.ENVELOPE)
    assert envelope is not None and await redis.exists(client.keys.arq_job(job)) == 0
    return job, envelope


async def claimed(client: Client, redis: Redis) -> tuple[str, bytes, Unit]:
    """`enqueued`, and its one unit claimed."""
    job, envelope = await enqueued(client, redis)
    [unit] = (await claimer(redis, client.keys).claim(room=1, most=1, aborts_since_ms=0)).units
    return job, envelope, unit


async def test_a_client_job_has_no_arq_key_from_enqueue_to_end(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """The claim hands out the envelope of the status hash; the ending drops it."""
    keys = client.keys
    job, envelope, unit = await claimed(client, redis)
    assert orjson.loads(envelope)["k"]["inputs"] == ["data:,a"]
    assert unit.envelope == envelope
    assert await redis.exists(keys.arq_job(job)) == 0
    await store(redis, keys, unit, 0)
    assert await end(endings, unit, "done") == "complete"
    assert (await client.status(job)).state == JobState.COMPLETE
    assert await redis.hget(keys.job(job), Field.ENVELOPE) is None
    assert await redis.exists(keys.arq_job(job)) == 0


async def test_a_unit_taken_over_gets_the_envelope_of_the_status_hash(
    client: Client, redis: Redis
) -> None:
    """A worker that takes over a lapsed unit, not having the job, is sent its envelope."""
    keys = client.keys
    job, envelope = await enqueued(client, redis)
    await claimer(redis, keys, "w-1", lease_s=0.01).claim(room=1, most=1, aborts_since_ms=0)
    await asyncio.sleep(0.05)
    [unit] = (await claimer(redis, keys, "w-2").claim(room=1, most=1, aborts_since_ms=0)).units
    assert (unit.job_id, unit.tries, unit.envelope) == (job, 2, envelope)


async def test_a_raw_job_runs_from_its_arq_key_and_ends_with_it_gone(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """SET arq:job:{id} + ZADD (docs/wire-format.md) still works: no envelope field."""
    keys = client.keys
    envelope = orjson.dumps(
        {
            "t": 1,
            "f": "sluice",
            "a": [],
            "k": {"pipeline": "text-stats", "inputs": ["data:,r"]},
            "et": int(time.time() * 1000),
        }
    )
    await redis.set(keys.arq_job("raw-env"), envelope, px=86_400_000)
    await redis.zadd(keys.queue, {"raw-env": time.time() * 1000 - 1000})  # due on any clock
    [unit] = (await claimer(redis, keys).claim(room=1, most=1, aborts_since_ms=0)).units
    assert unit.envelope == envelope
    assert await redis.hget(keys.job("raw-env"), Field.ENVELOPE) is None
    await store(redis, keys, unit, 0)
    assert await end(endings, unit, "done") == "complete"
    assert await redis.exists(keys.arq_job("raw-env")) == 0
    assert await redis.exists(keys.arq_result("raw-env")) == 1


async def test_a_cancelled_client_job_keeps_its_envelope_as_the_spec_and_retries(
    client: Client, redis: Redis
) -> None:
    """Cancel copies the envelope to the spec and drops the field; retry puts it back."""
    keys = client.keys
    job, envelope = await enqueued(client, redis)
    assert await client.cancel(job)
    assert await redis.get(keys.spec(job)) == envelope
    assert await redis.hget(keys.job(job), Field.ENVELOPE) is None
    assert await client.retry(job) is None
    assert await redis.hget(keys.job(job), Field.ENVELOPE) == envelope
    assert await redis.exists(keys.arq_job(job)) == 0
    [unit] = (await claimer(redis, keys).claim(room=1, most=1, aborts_since_ms=0)).units
    assert (unit.job_id, unit.envelope) == (job, envelope)


async def test_a_failed_client_job_keeps_its_envelope_as_the_spec(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """A job that fails keeps the envelope of its status hash as its spec, for retry."""
    keys = client.keys
    job, envelope, unit = await claimed(client, redis)
    assert await end(endings, unit, "fail") == "failed"
    assert await redis.get(keys.spec(job)) == envelope
    assert await redis.hget(keys.job(job), Field.ENVELOPE) is None
    assert 0 < await redis.ttl(keys.spec(job)) <= 600


async def test_only_a_job_of_several_units_is_kept_for_the_claims_after(
    client: Client, redis: Redis, settings: ClientSettings
) -> None:
    """A worker keeps the checked envelope of a job with units still to claim, and each claim
    tells the script of those (their envelope is not sent again); a job of one unit is not
    kept: no later claim of it, so nothing for the claim to read per call."""
    importlib.import_module("worker.pipelines")  # registers text-stats
    jobs = Jobs(settings)
    one, _, unit = await claimed(client, redis)
    assert jobs.get(unit).job_id == one
    assert jobs.cached() == {}
    big = await client.enqueue("text-stats", [f"data:,{i}" for i in range(250)])  # 3 units
    worker = claimer(redis, client.keys)
    [first] = (await worker.claim(room=1, most=1, aborts_since_ms=0)).units
    kept = jobs.get(first)
    assert first.envelope is not None and kept.job_id == big
    assert jobs.cached() == {big: (1, orjson.loads(first.envelope)["et"])}
    claim = await worker.claim(room=1, most=1, aborts_since_ms=0, cached=jobs.cached())
    [second] = claim.units
    assert (second.job_id, second.index, second.envelope) == (big, 1, None)
    assert jobs.get(second) is kept
