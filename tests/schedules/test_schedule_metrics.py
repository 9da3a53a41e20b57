"""sluice_schedule_ticks_total on a real worker's /metrics: each tick it fired or skipped,
by schedule and outcome, agreeing with the schedule's own counts in Redis."""

from __future__ import annotations

from producer.contract.keys import Keys
from producer.contract.schedule_scripts import ScheduleField
from producer.redis.typed import Redis
from tests.schedules.test_workers import definitions
from tests.support.scrape import Samples, key, scrape, wait_until
from tests.support.servers import free_port
from tests.support.workers import WorkerFactory

TICKS = "sluice_schedule_ticks_total"


async def counts(redis: Redis, keys: Keys, name: str) -> tuple[int, int]:
    """The schedule's fired and skipped counts in its hash."""
    fired, skipped = await redis.hmget(
        keys.schedule(name), [ScheduleField.FIRED, ScheduleField.SKIPPED]
    )
    return int(fired or 0), int(skipped or 0)


async def test_ticks_are_counted_by_schedule_and_outcome(
    workers: WorkerFactory, redis: Redis, namespace: str
) -> None:
    """A 1 s schedule fires each tick; another, into a queue no worker serves capped at one
    job, fires once then skips as queue_full; the counter agrees with the hashes, and every
    outcome of each schedule is exported from the start."""
    port = free_port()
    keys = Keys(namespace)
    both = definitions({"name": "often"}, {"name": "capped", "queue": "capped"})
    workers(schedules=both, metrics_port=port, pool_size=1, max_queued_jobs=1)
    samples: Samples = {}

    async def agree() -> bool:
        nonlocal samples
        often, capped = await counts(redis, keys, "often"), await counts(redis, keys, "capped")
        samples = await scrape(port)
        got = {
            (name, outcome): samples.get(key(TICKS, schedule=name, outcome=outcome))
            for name in ("often", "capped")
            for outcome in ("fired", "queue_full")
        }
        return (
            often[0] >= 3
            and capped[1] >= 2
            and got
            == {
                ("often", "fired"): often[0],
                ("often", "queue_full"): often[1],
                ("capped", "fired"): capped[0],
                ("capped", "queue_full"): capped[1],
            }
        )

    await wait_until(agree)
    assert samples[key(TICKS, schedule="capped", outcome="fired")] == 1
    for name in ("often", "capped"):
        for outcome in ("exists", "too_many_queues"):
            assert samples[key(TICKS, schedule=name, outcome=outcome)] == 0
