"""FIRE on the real server: of callers that saw the same tick due, exactly one enqueues it;
a tick not due, a definition replaced, a full queue; the job lands as an enqueue's would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from producer import Client, ClientSettings, JobState
from producer.contract.keys import WAKE_TOKENS, Keys
from producer.contract.placement import place
from producer.contract.schedule_scripts import Fired, ScheduleField
from producer.contract.schedules import Schedule, tick_job_id
from producer.redis.failover import NotConfirmed
from producer.redis.typed import Redis
from tests.support.servers import Server
from worker.schedules.firing import Firing
from worker.schedules.scheduler import Scheduler
from worker.settings import WorkerConfig

ROUNDS = 20


@pytest.fixture
def config(server: Server, settings: ClientSettings) -> WorkerConfig:
    return WorkerConfig(
        redis_url=server.url, namespace=settings.namespace, max_queued_jobs=3, _env_file=None
    )


@pytest.fixture
async def other_redis(server: Server) -> AsyncIterator[Redis]:
    """A second connection: a second caller, as another worker would be."""
    r = Redis.from_url(server.url)
    yield r
    await r.aclose()


def every_second(**fields: object) -> Schedule:
    return Schedule.model_validate(
        {"name": "tick", "pipeline": "text-stats", "inputs": ["data:,x"], "every_s": 1, **fields}
    )


async def published(redis: Redis, config: WorkerConfig, schedule: Schedule) -> int:
    """Publish ``schedule`` and move its next tick a minute back (due now); that tick."""
    keys = Keys(config.namespace)
    await Scheduler(redis, keys, config, "w1", [schedule]).publish()
    seconds, _ = await redis.time()
    tick = (int(seconds) - 60) * 1000
    await redis.zadd(keys.schedules, {schedule.name: tick})
    return tick


async def test_two_callers_of_the_same_tick_enqueue_it_once(
    redis: Redis, other_redis: Redis, config: WorkerConfig, client: Client
) -> None:
    """Round after round, two callers race with the same expected tick: one enqueues, one
    finds the tick moved on; each tick's job is queued once."""
    schedule = every_second()
    tick = await published(redis, config, schedule)
    keys, digest = Keys(config.namespace), schedule.digest()
    mine, theirs = Firing(redis, keys, config), Firing(other_redis, keys, config)
    for n in range(ROUNDS):
        due = tick + n * 1000
        outcomes = await asyncio.gather(
            mine.fire(schedule, digest, due, due, due + 1000),
            theirs.fire(schedule, digest, due, due, due + 1000),
        )
        assert sorted(o for o, _ in outcomes) == [Fired.NOT_MINE, Fired.ENQUEUED]
        await redis.delete(keys.queue)  # stay under the cap of 3
    assert await redis.zscore(keys.schedules, "tick") == tick + ROUNDS * 1000
    record = await redis.hgetall(keys.schedule("tick"))
    assert record[ScheduleField.FIRED.encode()] == str(ROUNDS).encode()
    last = tick_job_id(config.namespace, "tick", tick + (ROUNDS - 1) * 1000)
    assert record[ScheduleField.LAST_JOB.encode()] == last.encode()
    assert (await client.status(last)).pipeline == "text-stats"


async def test_a_tick_not_due_is_not_fired(redis: Redis, config: WorkerConfig) -> None:
    """A tick ahead of Redis's clock is left for later, and the next tick stays."""
    schedule = every_second()
    tick = await published(redis, config, schedule)
    keys = Keys(config.namespace)
    await redis.zadd(keys.schedules, {"tick": tick + 3_600_000})
    firing = Firing(redis, keys, config)
    ahead = tick + 3_600_000
    outcome, _ = await firing.fire(schedule, schedule.digest(), ahead, ahead, ahead + 1000)
    assert outcome is Fired.NOT_MINE
    assert await redis.zscore(keys.schedules, "tick") == ahead
    assert await redis.zcard(keys.queue) == 0


async def test_a_replaced_definition_is_not_fired(redis: Redis, config: WorkerConfig) -> None:
    """A worker whose definition is no longer the published one fires nothing."""
    schedule = every_second()
    tick = await published(redis, config, schedule)
    keys = Keys(config.namespace)
    other = every_second(inputs=["data:,other"])
    await Scheduler(redis, keys, config, "w2", [other]).publish()
    await redis.zadd(keys.schedules, {"tick": tick})
    firing = Firing(redis, keys, config)
    outcome, _ = await firing.fire(schedule, schedule.digest(), tick, tick, tick + 1000)
    assert outcome is Fired.REDEFINED
    assert await redis.zcard(keys.queue) == 0
    assert await redis.hget(keys.schedule("tick"), ScheduleField.PUBLISHED_BY) == b"w2"


async def test_a_full_queue_skips_the_tick_and_says_why(redis: Redis, config: WorkerConfig) -> None:
    """At SLUICE_MAX_QUEUED_JOBS the tick is skipped, counted, and the next one set."""
    schedule = every_second()
    tick = await published(redis, config, schedule)
    keys = Keys(config.namespace)
    await redis.zadd(keys.queue, {"a": 1, "b": 2, "c": 3})
    firing = Firing(redis, keys, config)
    outcome, job_id = await firing.fire(schedule, schedule.digest(), tick, tick, tick + 1000)
    assert outcome is Fired.QUEUE_FULL
    assert not await redis.exists(keys.job(job_id))
    assert await redis.zscore(keys.schedules, "tick") == tick + 1000
    record = await redis.hgetall(keys.schedule("tick"))
    assert record[b"skipped"] == b"1" and b"SLUICE_MAX_QUEUED_JOBS" in record[b"last_error"]


async def test_the_job_lands_in_its_queue_with_its_settings(
    redis: Redis, config: WorkerConfig, client: Client
) -> None:
    """A schedule in a named queue with a priority: the job waits there, placed by its
    priority, its status shows the settings, the queue is registered and woken."""
    schedule = every_second(queue="reports", priority=5, timeout_s=30, max_tries=2)
    tick = await published(redis, config, schedule)
    keys = Keys(config.namespace)
    firing = Firing(redis, keys, config)
    outcome, job_id = await firing.fire(schedule, schedule.digest(), tick, tick, tick + 1000)
    assert outcome is Fired.ENQUEUED
    assert await redis.zscore(keys.named_queue("reports"), job_id) == place(tick, 5)
    assert await redis.sismember(keys.queues, "reports")
    assert await redis.llen(keys.wake_for("reports")) == 1 <= WAKE_TOKENS
    status = await client.status(job_id)
    assert status.state == JobState.QUEUED
    assert (status.queue, status.priority, status.timeout_s, status.max_tries) == (
        "reports",
        5,
        30,
        2,
    )
    assert status.enqueued_at == tick / 1000
    assert status.schedule == "tick"  # which schedule made it, in the status
    [(_, event)] = [e for e in await redis.xrange(keys.events) if e[1][b"job"] == job_id.encode()]
    assert (event[b"type"], event[b"queue"], event[b"schedule"]) == (
        b"enqueued",
        b"reports",
        b"tick",
    )


async def test_with_wait_replicas_an_unconfirmed_fire_says_so(
    redis: Redis, server: Server, settings: ClientSettings
) -> None:
    """SLUICE_REDIS_WAIT_REPLICAS applies to FIRE as to an enqueue: with no replica to
    confirm it, the tick's job is written and the call says it was not confirmed."""
    config = WorkerConfig(
        redis_url=server.url,
        namespace=settings.namespace,
        redis_wait_replicas=1,
        redis_wait_timeout_ms=50,
        _env_file=None,
    )
    schedule = every_second()
    tick = await published(redis, config, schedule)
    firing = Firing(redis, Keys(config.namespace), config)
    with pytest.raises(NotConfirmed, match="0 of 1 replicas"):
        await firing.fire(schedule, schedule.digest(), tick, tick, tick + 1000)
    job_id = tick_job_id(config.namespace, "tick", tick)
    assert await redis.exists(Keys(config.namespace).job(job_id))
