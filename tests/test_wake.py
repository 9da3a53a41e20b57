"""Waking: an enqueue pushes a token to {ns}:wake, so an idle worker starts the job at once
instead of at its next poll; jobs that need no waking push none, and the list stays small."""

from __future__ import annotations

from producer import Client, JobState
from producer.contract.keys import WAKE_TOKENS
from producer.redis.typed import Redis
from tests.expected import data_uri
from tests.support.scrape import wait_until
from tests.support.workers import WorkerFactory
from tests.test_wire import raw_enqueue

POLL_S = 30  # far longer than any wait below: only a wake-up can start a job in time


async def test_an_enqueue_wakes_an_idle_worker(
    client: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """With a 30 s poll delay, a Client's jobs still start at once, one after another."""
    workers(poll_delay_s=POLL_S)

    async def waiting() -> bool:  # past its first poll, blocked on the wake list
        return any(c.get("cmd") == "blpop" for c in await redis.client_list())

    await wait_until(waiting)
    for i in range(3):
        job_id = await client.enqueue("text-stats", [data_uri(f"{i}".encode())])
        status = await client.wait(job_id, timeout_s=POLL_S / 3)
        assert status.state == JobState.COMPLETE


async def test_a_raw_enqueue_is_picked_up_by_polling(
    client: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """A job written with SET + ZADD pushes no token; the worker's poll still finds it."""
    workers(poll_delay_s=0.2)
    envelope = (
        b'{"t":1,"f":"sluice","a":[],"k":{"pipeline":"text-stats","inputs":["data:,x"]},"et":1}'
    )
    await raw_enqueue(redis, client.keys, "raw-poll", envelope)
    assert (await client.wait("raw-poll", timeout_s=30)).state == JobState.COMPLETE


async def test_tokens_are_capped_and_deferred_jobs_push_none(client: Client, redis: Redis) -> None:
    """Many enqueues leave at most WAKE_TOKENS tokens; a deferred job wakes nobody."""
    await client.enqueue("text-stats", [data_uri(b"later")], defer_s=600)
    assert await redis.llen(client.keys.wake) == 0
    for i in range(WAKE_TOKENS + 10):
        await client.enqueue("text-stats", [data_uri(f"{i}".encode())])
    assert await redis.llen(client.keys.wake) == WAKE_TOKENS


async def test_each_queue_wakes_its_own_workers(
    client: Client, redis: Redis, workers: WorkerFactory
) -> None:
    """Two idle workers, one per queue, with a 30 s poll: a job of either queue starts at
    once, though the other queue's worker is idle too (its token is on its queue's list,
    where only that queue's workers wait)."""
    workers(poll_delay_s=POLL_S, queues="urgent")
    workers(poll_delay_s=POLL_S, queues="default")

    async def both_waiting() -> bool:
        waiting = [c for c in await redis.client_list() if c.get("cmd") == "blpop"]
        return len(waiting) >= 2

    await wait_until(both_waiting)
    for queue in ("urgent", "default", "urgent", "default"):
        job_id = await client.enqueue("text-stats", [data_uri(queue.encode())], queue=queue)
        status = await client.wait(job_id, timeout_s=POLL_S / 3)
        assert status.state == JobState.COMPLETE
    await client.enqueue("text-stats", [data_uri(b"later")], queue="urgent", defer_s=600)
    assert await redis.llen(client.keys.wake_for("urgent")) == 0
