"""Schedules fired by real worker processes: two workers fire each tick of a 1 s schedule
once, none skipped; a worker stopped and started again catches up by the schedule's rule."""

from __future__ import annotations

import json

from producer import Client, JobState
from producer.contract.keys import Keys
from producer.contract.schedule_scripts import ScheduleField
from producer.contract.schedules import tick_job_id
from producer.contract.ticks import LATE_S
from producer.redis.typed import Redis
from tests.support.scrape import wait_until
from tests.support.workers import WorkerFactory, WorkerProcess

SECOND = 1000


def definitions(*schedules: dict[str, object]) -> str:
    return json.dumps(
        [{"pipeline": "text-stats", "inputs": ["data:,tick"], "every_s": 1, **s} for s in schedules]
    )


def fired_ticks(workers: list[WorkerProcess], name: str) -> list[int]:
    """The ticks of ``name`` the workers' logs say they enqueued, in order, repeats kept."""
    return sorted(
        int(str(event["tick_ms"]))
        for worker in workers
        for event in worker.events("schedule fired")
        if event.get("schedule") == name
    )


async def fired(redis: Redis, keys: Keys, name: str) -> int:
    return int(await redis.hget(keys.schedule(name), ScheduleField.FIRED) or 0)


def assert_each_tick_once(ticks: list[int]) -> None:
    """Consecutive seconds, none twice, none left out."""
    assert ticks == list(range(ticks[0], ticks[-1] + SECOND, SECOND)), ticks


async def test_two_workers_fire_each_tick_once(
    workers: WorkerFactory, redis: Redis, client: Client
) -> None:
    """Two workers with the same 1 s schedules: about 5 s of ticks, each enqueued by exactly
    one of them, none skipped, and every one of those jobs is there; those of a schedule in a
    named queue with a priority wait in that queue (no worker serves it) with those fields."""
    both = definitions(
        {"name": "every-second"}, {"name": "reports", "queue": "reports", "priority": 5}
    )
    started = workers.many(2, schedules=both, pool_size=1)
    keys = client.keys

    async def five_fired() -> bool:
        return await fired(redis, keys, "every-second") >= 5

    await wait_until(five_fired, timeout_s=30)
    for worker in started:
        assert worker.stop() == 0
    ticks = fired_ticks(started, "every-second")
    assert len(ticks) == await fired(redis, keys, "every-second") >= 5
    assert_each_tick_once(ticks)
    for worker in started:
        assert worker.events("schedule tick skipped") == []
    for tick in ticks:
        status = await client.status(tick_job_id(keys.namespace, "every-second", tick))
        assert status.state != JobState.NOT_FOUND
    reports = fired_ticks(started, "reports")
    assert_each_tick_once(reports)
    waiting = [  # on a sharded layout, each job waits in its own shard's queue
        member
        for shard in keys.every_shard()
        for member in await redis.zrange(shard.named_queue("reports"), 0, -1)
    ]
    assert sorted(waiting) == sorted(
        tick_job_id(keys.namespace, "reports", tick).encode() for tick in reports
    )
    status = await client.status(waiting[0].decode())
    assert (status.state, status.queue, status.priority) == (JobState.QUEUED, "reports", 5)


async def test_a_restart_catches_up_by_the_schedules_rule(
    workers: WorkerFactory, redis: Redis, client: Client
) -> None:
    """A worker stopped for longer than LATE_S, then started again: missed="all" fires every
    tick missed (none twice); missed="skip" skips the ticks missed, firing only those late
    (due within LATE_S), each once."""
    both = definitions({"name": "all-of-them", "missed": "all"}, {"name": "latest-only"})
    keys = client.keys
    first = workers(schedules=both, pool_size=1)

    async def two_fired() -> bool:
        return await fired(redis, keys, "latest-only") >= 2

    await wait_until(two_fired)
    assert first.stop() == 0
    before = fired_ticks([first], "latest-only")
    down_at = int((await redis.time())[0])

    async def past_late() -> bool:  # its ticks are missed, not late (LATE_S)
        return int((await redis.time())[0]) >= down_at + LATE_S + 1

    await wait_until(past_late)
    second = workers(schedules=both, pool_size=1)
    after_restart = await fired(redis, keys, "latest-only") + 2

    async def two_more() -> bool:
        return await fired(redis, keys, "latest-only") >= after_restart

    await wait_until(two_more)
    assert second.stop() == 0
    assert_each_tick_once(fired_ticks([first, second], "all-of-them"))
    latest = fired_ticks([first, second], "latest-only")
    assert len(set(latest)) == len(latest)
    resumed = latest[len(before)]
    assert resumed - before[-1] >= 2 * SECOND  # the ticks missed were skipped...
    assert_each_tick_once(latest[len(before) :])  # ...and from the restart on, each once
