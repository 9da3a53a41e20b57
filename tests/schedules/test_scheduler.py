"""The scheduler loop's rules, one step at a time on the real server: the last definition
published wins, a schedule deleted by hand is published again, one no live worker defines
is forgotten; and the scripts spell only the schedule hash's fields."""

from __future__ import annotations

import re

import pytest

from producer import ClientSettings
from producer.contract import schedule_scripts
from producer.contract.events import EVENT_FIELDS, EventType
from producer.contract.keys import DEFAULT_QUEUE, Keys
from producer.contract.liveness import FORGOTTEN_S
from producer.contract.schedule_scripts import ScheduleField
from producer.contract.schedules import Schedule
from producer.contract.status import ALL
from producer.redis.typed import Redis
from tests.support.servers import Server
from worker.schedules.scheduler import Scheduler
from worker.settings import WorkerConfig

MINE = Schedule(name="tick", pipeline="text-stats", inputs=["data:,mine"], every_s=1)
THEIRS = Schedule(name="tick", pipeline="text-stats", inputs=["data:,theirs"], every_s=1)


@pytest.fixture
def config(server: Server, settings: ClientSettings) -> WorkerConfig:
    return WorkerConfig(redis_url=server.url, namespace=settings.namespace, _env_file=None)


async def make_due(redis: Redis, keys: Keys) -> int:
    """Move the tick schedule's next tick a minute back; that tick."""
    tick = (int((await redis.time())[0]) - 60) * 1000
    await redis.zadd(keys.schedules, {"tick": tick})
    return tick


async def test_the_last_definition_published_wins(redis: Redis, config: WorkerConfig) -> None:
    """A worker whose definition was replaced fires nothing and stands aside; the worker
    that published last fires the tick due."""
    keys = Keys(config.namespace)
    older = Scheduler(redis, keys, config, "older", [MINE])
    newer = Scheduler(redis, keys, config, "newer", [THEIRS])
    await older.publish()
    await newer.publish()
    await make_due(redis, keys)
    await older.step()
    assert older.outranked == {"tick"}
    assert await redis.zcard(keys.queue) == 0
    await newer.step()
    fired = await redis.zrange(keys.queue, 0, -1)
    assert fired  # the latest tick missed, or the ticks late (LATE_S): each the newer's job
    for job_id in fired:
        assert b'"data:,theirs"' in (await redis.hget(keys.job(job_id.decode()), "envelope") or b"")


async def test_a_schedule_deleted_by_hand_is_published_again(
    redis: Redis, config: WorkerConfig
) -> None:
    """Its next tick gone from {ns}:schedules, a worker publishes it afresh at its next step,
    so it fires again (and a worker that stood aside takes it back)."""
    keys = Keys(config.namespace)
    scheduler = Scheduler(redis, keys, config, "w", [MINE])
    scheduler.outranked.add("tick")
    await redis.zrem(keys.schedules, "tick")
    await scheduler.step()
    assert await redis.zscore(keys.schedules, "tick") is not None
    assert scheduler.outranked == set()


async def test_a_schedule_no_worker_defines_is_forgotten(
    redis: Redis, config: WorkerConfig
) -> None:
    """A schedule not seen for FORGOTTEN_S loses its next tick and its hash at a worker's
    beat; the worker's own schedules stay, marked seen."""
    keys = Keys(config.namespace)
    scheduler = Scheduler(redis, keys, config, "w", [MINE])
    await scheduler.publish()
    now_ms = int((await redis.time())[0]) * 1000
    await redis.zadd(keys.schedules, {"removed": now_ms + 60_000})
    old = now_ms - (FORGOTTEN_S + 1) * 1000
    await redis.hset(keys.schedule("removed"), ScheduleField.SEEN_AT, old)
    await scheduler.step()
    assert await redis.zrange(keys.schedules, 0, -1) == [b"tick"]
    assert not await redis.exists(keys.schedule("removed"))
    assert int(await redis.hget(keys.schedule("tick"), ScheduleField.SEEN_AT) or b"") >= now_ms


def test_the_scripts_spell_only_the_schedule_fields() -> None:
    """Every field PUBLISH, FIRE, HOLD and FORGET quote is a ScheduleField or a status
    field."""
    words = {
        word
        for source in (
            schedule_scripts.PUBLISH,
            schedule_scripts.FIRE,
            schedule_scripts.HOLD,
            schedule_scripts.FORGET,
        )
        for word in re.findall(r"'([a-z_]+)'", source)
    }
    known = {f.value for f in ScheduleField} | ALL | {"queued", DEFAULT_QUEUE}
    known |= {e.value for e in EventType} | set(EVENT_FIELDS)  # the enqueued event's
    assert words - known == set()
