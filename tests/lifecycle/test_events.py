"""The lifecycle's scripts write their events in the same step as the change: started at the
claim, retrying at a delayed release or a resume, failed and completed at the ending."""

from __future__ import annotations

import asyncio

from producer import Client
from producer.contract.events import Event, EventType
from producer.redis.typed import Redis
from tests.lifecycle.support import claimer, end, store
from worker.lifecycle.endings import Endings, Entry


async def events_of(client: Client, job: str) -> list[Event]:
    return [e async for e in client.events(since="0", job_id=job, follow=False)]


async def test_claim_and_ending_write_started_then_completed(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """A job's run starting (its first unit handed out) writes started, with its queue and
    pipeline; its last unit done writes completed."""
    job = await client.enqueue("text-stats", [f"data:,{i}" for i in range(150)])
    worker = claimer(redis, client.keys)
    [first] = (await worker.claim(room=1, most=1, aborts_since_ms=0)).units
    [second] = (await worker.claim(room=1, most=1, aborts_since_ms=0)).units
    await store(redis, client.keys, first, *range(100))
    await store(redis, client.keys, second, *range(100, 150))
    assert await end(endings, first, "done") == "ok"
    assert await end(endings, second, "done") == "complete"
    events = await events_of(client, job)
    assert [e.type for e in events] == ["enqueued", "started", "completed"]
    started = events[1]
    assert (started.queue, started.pipeline) == ("default", "text-stats")
    assert (events[2].queue, events[2].pipeline) == ("default", "text-stats")


async def test_a_delayed_release_writes_retrying_and_a_hand_back_writes_nothing(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """A try that failed (released after a delay) says retrying with its error, unit and
    delay; a unit handed back at once (shutdown) is no event."""
    job = await client.enqueue("text-stats", ["data:,a"])
    [unit] = (await claimer(redis, client.keys).claim(room=1, most=1, aborts_since_ms=0)).units
    entry = Entry("release", job, 0, unit.token, delay_ms=5, fields=("error", "it broke"))
    assert await endings.send(job, entry) == "released"
    events = await events_of(client, job)
    assert [e.type for e in events] == ["enqueued", "started", "retrying"]
    assert (events[2].error, events[2].unit, events[2].delay_ms) == ("it broke", 0, 5)
    await asyncio.sleep(0.05)  # past its delay
    [again] = (await claimer(redis, client.keys).claim(room=1, most=1, aborts_since_ms=0)).units
    assert await end(endings, again, "release") == "released"  # no delay: a hand-back
    assert [e.type for e in await events_of(client, job)] == ["enqueued", "started", "retrying"]


async def test_missing_records_write_retrying_then_failed(
    client: Client, redis: Redis, endings: Endings
) -> None:
    """A job ended with records missing runs again (retrying, saying how many), and once its
    runs are spent fails (failed, with the error), started again for the second run."""
    job = await client.enqueue("text-stats", ["data:,a", "data:,b"])
    [unit] = (await claimer(redis, client.keys).claim(room=1, most=1, aborts_since_ms=0)).units
    await store(redis, client.keys, unit, 0)
    assert await end(endings, unit, "done") == "resumed"
    [again] = (await claimer(redis, client.keys).claim(room=1, most=1, aborts_since_ms=0)).units
    assert await end(endings, again, "done") == "failed"
    events = await events_of(client, job)
    kinds = [e.type for e in events]
    assert kinds == ["enqueued", "started", "retrying", "started", "failed"]
    assert "1 of 2 inputs had no record" in (events[2].error or "")
    assert "1 of 2 inputs have no record after 2 runs" in (events[4].error or "")


async def test_a_job_refused_at_the_claim_writes_failed(client: Client, redis: Redis) -> None:
    """A queue entry whose id breaks the grammar fails at the claim: a failed event names
    it, with the reason."""
    await redis.zadd(client.keys.queue, {"bad id!": 0})
    await claimer(redis, client.keys).claim(room=1, most=1, aborts_since_ms=0)
    [event] = [e async for e in client.events(since="0", follow=False)]
    assert (event.job, event.type) == ("bad id!", EventType.FAILED)
    assert "invalid job id" in (event.error or "")
