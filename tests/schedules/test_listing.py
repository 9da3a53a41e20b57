"""Schedules as their readers see them: `Client.schedules` and `sluice schedules`; firing
one now with `run_schedule` / `sluice schedules run` (the API and page: tests/dashboard)."""

from __future__ import annotations

import asyncio
import json

import pytest

from producer import Client, ClientSettings, JobState, SluiceError, SyncClient
from producer.contract.schedule_scripts import ScheduleField
from producer.redis.typed import Redis
from tests.schedules.helpers import publish_and_fire
from tests.support.cli import sluice


async def test_the_client_lists_schedules_with_their_last_job(
    client: Client, settings: ClientSettings, redis: Redis
) -> None:
    """Timing, next and last run, the last job and its state; stale once no live worker
    has defined it for a while."""
    job_id = await publish_and_fire(settings)
    nightly, often = await client.schedules()
    assert (nightly.name, nightly.timing, nightly.queue, nightly.priority) == (
        "nightly",
        "cron '0 3 * * *' Europe/Paris",
        "reports",
        3,
    )
    assert (nightly.last_job, nightly.last_state, nightly.fired) == (job_id, JobState.QUEUED, 1)
    assert nightly.next_run is not None and nightly.last_run is not None
    assert nightly.next_run - nightly.last_run == 86_400
    assert (often.timing, often.last_job, often.last_state, often.stale) == (
        "every 60 s",
        None,
        None,
        False,
    )
    await redis.hset(client.keys.schedule("often"), ScheduleField.SEEN_AT, 1)
    assert [s.stale for s in await client.schedules()] == [False, True]


async def test_run_schedule_enqueues_its_job_now(client: Client, settings: ClientSettings) -> None:
    """A schedule fired by hand: its job, in its queue, its ticks left as they were."""
    await publish_and_fire(settings)
    before = {s.name: s.next_run for s in await client.schedules()}
    job_id = await client.run_schedule("nightly")
    assert job_id.startswith("sched-nightly-now-")
    status = await client.status(job_id)
    assert (status.state, status.queue, status.priority) == (JobState.QUEUED, "reports", 3)
    assert {s.name: s.next_run for s in await client.schedules()} == before
    with pytest.raises(SluiceError, match="no schedule 'nope' is published"):
        await client.run_schedule("nope")


def test_the_cli_lists_and_runs_schedules(settings: ClientSettings) -> None:
    """`sluice schedules` as a table and as JSON lines; `sluice schedules run NAME` prints
    the job's id; an unknown name exits 1 saying so."""
    job_id = asyncio.run(publish_and_fire(settings))
    env = {"SLUICE_REDIS_URL": str(settings.redis_url), "SLUICE_NAMESPACE": settings.namespace}
    env["SLUICE_SHARDS"] = str(settings.keys.shards)
    table = sluice(env, "schedules")
    assert table.exit_code == 0, table.stderr
    assert "nightly" in table.stdout and "every 60 s" in table.stdout and "queued" in table.stdout
    lines = [json.loads(line) for line in sluice(env, "schedules", "--json").stdout.splitlines()]
    assert [(s["name"], s["last_job"]) for s in lines] == [("nightly", job_id), ("often", None)]
    ran = sluice(env, "schedules", "run", "often")
    assert ran.exit_code == 0 and ran.stdout.startswith("sched-often-now-")
    with SyncClient(settings) as client:
        assert client.status(ran.stdout.strip()).state == JobState.QUEUED
    missing = sluice(env, "schedules", "run", "nope")
    assert missing.exit_code == 1 and "no schedule 'nope'" in missing.stderr
