"""Schedules on a sharded layout (SLUICE_SHARDS=4 on one server): the tests that check them
unsharded, run again. Each tick's job lands in the shard of its id; the schedules' own keys
are the fleet's."""

from __future__ import annotations

from producer import ClientSettings
from producer.redis.typed import Redis
from tests.schedules import test_listing, test_workers
from tests.schedules.helpers import publish_and_fire
from tests.support.sharded import settings, workers

__all__ = ["settings", "workers"]  # the fixtures these tests run with

test_two_workers_fire_each_tick_once = test_workers.test_two_workers_fire_each_tick_once
test_a_restart_catches_up = test_workers.test_a_restart_catches_up_by_the_schedules_rule
test_the_client_lists_schedules = test_listing.test_the_client_lists_schedules_with_their_last_job
test_run_schedule_enqueues_its_job_now = test_listing.test_run_schedule_enqueues_its_job_now
test_the_cli_lists_and_runs_schedules = test_listing.test_the_cli_lists_and_runs_schedules


async def test_a_fired_tick_wakes_the_fleets_idle_workers(
    settings: ClientSettings, redis: Redis
) -> None:
    """FIRE pushes its token on the shard's wake list, which no worker waits on; the worker
    that fired then wakes the fleet's list of the job's queue, as an enqueue does."""
    job_id = await publish_and_fire(settings)
    keys = settings.keys
    assert await redis.zscore(keys.for_job(job_id).named_queue("reports"), job_id) is not None
    assert await redis.llen(keys.fleet_wake_for("reports")) == 1
