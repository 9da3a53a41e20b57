"""Schedules on a real 3-primary Valkey Cluster: a schedule's keys share the namespace's hash
tag, and each tick's job goes to its own shard in a step of its own (TICK_CHECK, TICK_JOB,
TICK_SET). Two workers fire each tick once; a try stopped between the job and the tick's
setting is finished by the next, the job counted once."""

from __future__ import annotations

import pytest

from producer import Client, ClientSettings, JobState
from producer.contract.schedule_scripts import TICK_CHECK, TICK_JOB, Fired, ScheduleField
from producer.redis.scripts import run_script
from producer.redis.typed import Redis
from tests.schedules import test_workers
from tests.schedules.helpers import OFTEN
from tests.support.workers import WorkerFactory
from worker.schedules.firing import SHA, Firing
from worker.schedules.scheduler import Scheduler
from worker.settings import WorkerConfig


@pytest.fixture
def workers(cluster_workers: WorkerFactory) -> WorkerFactory:
    return cluster_workers


@pytest.fixture
def client(on_cluster: Client) -> Client:
    return on_cluster


@pytest.fixture
def redis(on_cluster: Client) -> Redis:
    return on_cluster.redis


# two workers with the same 1 s schedules, on the cluster: each tick enqueued by one of them
test_two_workers_fire_each_tick_once = test_workers.test_two_workers_fire_each_tick_once


async def test_a_tick_stopped_after_its_job_is_finished_once(
    on_cluster: Client, cluster_settings: ClientSettings
) -> None:
    """TICK_CHECK and TICK_JOB run, then the worker stops before TICK_SET: the tick is still
    due; the next try finds its job there, sets the next tick and counts it fired once."""
    given = cluster_settings.model_dump(include={"redis_url", "redis_cluster", "namespace"})
    config = WorkerConfig(**given, _env_file=None)
    redis, keys = on_cluster.redis, config.keys
    await Scheduler(redis, keys, config, "w1", [OFTEN]).publish()
    tick = int((await redis.time())[0]) // 60 * 60_000
    await redis.zadd(keys.schedules, {OFTEN.name: tick})
    firing, digest, following = Firing(redis, keys, config), OFTEN.digest(), tick + 60_000
    planned = firing.tick(OFTEN, digest, tick, tick, following)
    own, job, args, job_id = planned.own, planned.job, planned.args, planned.job_id
    assert int(await run_script(redis, SHA[TICK_CHECK], TICK_CHECK, own, args[:5])) == 1
    outcome, _why = await run_script(redis, SHA[TICK_JOB], TICK_JOB, job, args)
    assert int(outcome) == 1 and await redis.zscore(keys.schedules, OFTEN.name) == tick
    again, same = await firing.fire(OFTEN, digest, tick, tick, following)
    assert (again, same) == (Fired.ENQUEUED, job_id)
    assert await redis.zscore(keys.schedules, OFTEN.name) == following
    assert await redis.hget(keys.schedule(OFTEN.name), ScheduleField.FIRED) == b"1"
    assert await redis.zcard(keys.for_job(job_id).queue) == 1
    assert (await on_cluster.status(job_id)).state == JobState.QUEUED
    late, _ = await firing.fire(OFTEN, digest, tick, tick, following)
    assert late == Fired.NOT_MINE
    [listed] = await on_cluster.schedules()
    assert (listed.name, listed.last_job, listed.fired) == (OFTEN.name, job_id, 1)
