"""A definition no live worker holds gives way: a live worker whose definition differs
publishes its own and fires it (HOLD, on the real server, and real workers, the newer one
killed); while the publisher lives, the last started wins, without flapping."""

from __future__ import annotations

import asyncio
import signal

import pytest
from structlog.testing import capture_logs

from producer import ClientSettings
from producer.contract.keys import Keys
from producer.contract.schedule_scripts import ScheduleField
from producer.contract.schedules import Schedule
from producer.redis.typed import Redis
from tests.schedules.test_workers import definitions, fired, fired_ticks
from tests.support.scrape import wait_until
from tests.support.servers import Server
from tests.support.workers import WorkerFactory
from worker.schedules.scheduler import Scheduler
from worker.settings import WorkerConfig

OLDER = Schedule(name="tick", pipeline="text-stats", inputs=["data:,older"], every_s=1)
NEWER = Schedule(name="tick", pipeline="text-stats", inputs=["data:,newer"], every_s=1)


@pytest.fixture
def config(server: Server, settings: ClientSettings) -> WorkerConfig:
    return WorkerConfig(redis_url=server.url, namespace=settings.namespace, _env_file=None)


async def redis_ms(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def published(redis: Redis, keys: Keys) -> tuple[str, str]:
    """The digest published and its publisher."""
    digest, by = await redis.hmget(
        keys.schedule("tick"), [ScheduleField.DIGEST, ScheduleField.PUBLISHED_BY]
    )
    return (digest or b"").decode(), (by or b"").decode()


async def test_while_both_live_the_last_started_wins_without_flapping(
    redis: Redis, config: WorkerConfig
) -> None:
    """Two live workers with two definitions, stepping in turn many times: the newer's stays
    published and only the newer fires; the older stands aside."""
    keys = Keys(config.namespace)
    older = Scheduler(redis, keys, config, "older", [OLDER])
    newer = Scheduler(redis, keys, config, "newer", [NEWER])
    older.live_s = newer.live_s = 0.3
    older.beat_s = newer.beat_s = 0  # a beat at every step
    await older.publish()
    await newer.publish()
    until_ms = await redis_ms(redis) + 1000  # past live_s three times over
    while await redis_ms(redis) < until_ms:
        await older.step()
        await newer.step()
        assert await published(redis, keys) == (NEWER.digest(), "newer")
        await asyncio.sleep(0.05)
    assert (older.outranked, newer.outranked) == ({"tick"}, set())


async def test_a_definition_no_live_worker_holds_is_taken_over(
    redis: Redis, config: WorkerConfig
) -> None:
    """The newer's holder gone for live_s (its held_at and published_at old), the older
    publishes its own at its next beat, warns naming both digests, and fires from the tick
    after the last one fired; the newer, back, stands aside (no flapping back)."""
    keys = Keys(config.namespace)
    older = Scheduler(redis, keys, config, "older", [OLDER])
    newer = Scheduler(redis, keys, config, "newer", [NEWER])
    await older.publish()
    await newer.publish()
    await older.step()
    assert older.outranked == {"tick"}
    now_ms = int((await redis.time())[0]) * 1000
    gone = now_ms - (int(older.live_s) + 1) * 1000
    await redis.hset(
        keys.schedule("tick"),
        mapping={
            ScheduleField.HELD_AT: gone,
            ScheduleField.PUBLISHED_AT: gone,
            ScheduleField.LAST_TICK: now_ms - 2000,
        },
    )
    older._beat_at = 0  # its next beat now
    with capture_logs() as logs:
        await older.step()
    assert await published(redis, keys) == (OLDER.digest(), "older")
    assert older.outranked == set()
    [warning] = [e for e in logs if e["event"].startswith("schedule: no live worker holds")]
    assert (warning["schedule"], warning["published"], warning["own"]) == (
        "tick",
        NEWER.digest(),
        OLDER.digest(),
    )
    jobs = [j.decode() for j in await redis.zrange(keys.queue, 0, -1)]
    assert jobs  # the ticks since the last fired (now_ms - 2 s), late, not missed
    assert all(int(j.split("-")[2].split(".")[0]) * 1000 > now_ms - 2000 for j in jobs)
    for job_id in jobs:
        assert b'"data:,older"' in (await redis.hget(keys.job(job_id), "envelope") or b"")
    newer._beat_at = 0
    await newer.step()
    assert newer.outranked == {"tick"}
    assert await published(redis, keys) == (OLDER.digest(), "older")


async def test_the_older_worker_fires_once_the_newer_is_killed(
    workers: WorkerFactory, redis: Redis, namespace: str
) -> None:
    """Two worker processes with different definitions of a 1 s schedule; the newer, which
    fires it, killed with SIGKILL: the older fires it within live_s (2 s here) and a beat
    or two, each tick once."""
    keys = Keys(namespace)
    short = {"pipelines": "tests.short_liveness", "pool_size": 1}
    older = workers(schedules=definitions({"name": "tick", "inputs": ["data:,older"]}), **short)
    newer = workers(schedules=definitions({"name": "tick", "inputs": ["data:,newer"]}), **short)

    async def newer_fires() -> bool:
        return bool(fired_ticks([newer], "tick"))

    await wait_until(newer_fires)
    newer.signal(signal.SIGKILL)
    newer.wait()
    killed_at = int((await redis.time())[0])
    before = await fired(redis, keys, "tick")
    fired_before = len(fired_ticks([older], "tick"))  # before the newer started

    async def older_fires() -> bool:
        return len(fired_ticks([older], "tick")) > fired_before

    await wait_until(older_fires, timeout_s=2 + 3)
    took_over = older.events(
        "schedule: no live worker holds its published definition; "
        "this worker publishes its own and fires it"
    )
    assert took_over and took_over[0]["schedule"] == "tick"
    first = fired_ticks([older], "tick")[fired_before]
    assert first // 1000 <= killed_at + 2 + 3
    assert await fired(redis, keys, "tick") > before
    both = fired_ticks([older, newer], "tick")
    assert len(set(both)) == len(both)  # no tick twice


async def test_fields_written_by_hand_never_stop_a_beat(redis: Redis, config: WorkerConfig) -> None:
    """held_at, published_at and last_tick that are not numbers read as never: the
    published definition counts as not held, and the beat takes it over, not fails."""
    keys = Keys(config.namespace)
    older = Scheduler(redis, keys, config, "older", [OLDER])
    await Scheduler(redis, keys, config, "newer", [NEWER]).publish()
    fields = (ScheduleField.HELD_AT, ScheduleField.PUBLISHED_AT, ScheduleField.LAST_TICK)
    await redis.hset(keys.schedule("tick"), mapping=dict.fromkeys(fields, "soon"))
    await older.step()
    assert await published(redis, keys) == (OLDER.digest(), "older")
