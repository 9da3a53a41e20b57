"""Soak: jobs of many inputs while workers are SIGKILLed every few seconds and Redis restarts.

Run by `make soak` (marked `soak`, so `make test` skips it). Prints its counts; asserts that
every input of every job ends with exactly one record: none lost, none counted twice.
"""

from __future__ import annotations

import asyncio
import os
import random
import time

import pytest

from producer import Client, ClientSettings, JobState
from tests.support.servers import Server
from tests.support.soak import kill_one, sleepy_jobs
from tests.support.workers import WorkerFactory, WorkerProcess

JOBS = 6
INPUTS_PER_JOB = 2000
WORKERS = 3
KILL_EVERY_S = 4.0
DURATION_S = float(os.environ.get("SLUICE_SOAK_S", "150"))
SETTINGS = {
    "pipelines": "tests.sample_pipelines",
    "pool_size": 1,
    "lease_s": 3,
    "max_jobs": 2,
    "max_tries": 1000,  # kills are not the job's fault: let it be tried as often as it takes
}


@pytest.mark.soak
@pytest.mark.timeout(DURATION_S + 300)
async def test_soak_kills_and_restart_lose_nothing(
    private_server: Server, settings: ClientSettings, workers: WorkerFactory
) -> None:
    """Under repeated SIGKILLs and a Redis restart, every input gets exactly one record."""
    own = settings.model_copy(update={"redis_url": private_server.url})
    env = {"redis_url": private_server.url, **SETTINGS}
    live: list[WorkerProcess] = [workers(**env) for _ in range(WORKERS)]
    rng = random.Random(1)
    kills = 0
    async with Client(own) as client:
        jobs = await sleepy_jobs(client, JOBS, INPUTS_PER_JOB, 0.02)
        start, restarted = time.monotonic(), False
        while time.monotonic() - start < DURATION_S:
            if all([(await client.status(j)).state.is_final for j in jobs]):
                break
            await asyncio.sleep(KILL_EVERY_S)
            kill_one(live, rng)
            kills += 1
            if not restarted and kills == 3:
                private_server.stop()
                await asyncio.sleep(1)
                private_server.start()
                restarted = True
            live.append(workers(**env))
        statuses = [await client.wait(j, timeout_s=300) for j in jobs]
        records = {j: await client.redis.hlen(client.keys.results(j)) for j in jobs}
    expected = JOBS * INPUTS_PER_JOB
    stored = sum(s.stored for s in statuses)
    kept = sum(records.values())
    attempts = sum(s.attempts for s in statuses)
    print(
        f"\nsoak: {JOBS} jobs × {INPUTS_PER_JOB} inputs = {expected}; workers SIGKILLed {kills}×;"
        f" Redis restarted {int(restarted)}×; attempts {attempts}; records {kept};"
        f" stored counter {stored}; lost {expected - kept}; counted twice {stored - kept}"
    )
    assert all(s.state == JobState.COMPLETE for s in statuses)
    assert kept == expected, "lost records"
    assert stored == kept, "records counted twice"
    assert restarted and kills >= 3
