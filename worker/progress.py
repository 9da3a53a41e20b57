"""Writes each running job's stage progress to its status hash a few times a second.

Counting happens in memory on the hot path; one pipelined write per tick carries it to
Redis, so `sluice watch` sees every stage move without a Redis call per item. A run is first
written at its second tick: a job over sooner (most small jobs) has its counters written
once, with its ending, and never costs a progress write.
"""

from __future__ import annotations

import asyncio

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from producer.keys import Keys
from worker.stages.items import JobRun, StageCounters

log = structlog.get_logger("sluice.progress")


class ProgressWriter:
    def __init__(self, redis: Redis, keys: Keys, interval_s: float = 0.25) -> None:
        self.redis, self.keys, self.interval_s = redis, keys, interval_s
        self.runs: set[JobRun] = set()
        self._writing: list[tuple[set[JobRun], asyncio.Event]] = []  # writes on the wire

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            due = []
            for run in self.runs:
                run.ticks += 1
                if run.ticks > 1:
                    due.append(run)
            await self.flush(due)

    async def settled(self, run: JobRun) -> None:
        """Wait for the progress writes of ``run`` already on their way: its ending sets
        counts outright, and an increment landing after it would count twice."""
        for runs, written in list(self._writing):
            if run in runs:
                await written.wait()

    async def flush(self, runs: list[JobRun]) -> None:
        pending = [(run, run.counters.take()) for run in runs if run.counters]
        if not pending:
            return
        writing = ({run for run, _ in pending}, asyncio.Event())
        self._writing.append(writing)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for run, delta in pending:
                    write_counters(pipe, self.keys.job(run.job_id), delta)
                    run.counters_written = True
                await pipe.execute()
        except RedisError as exc:
            for run, delta in pending:  # keep the deltas for the next tick
                run.counters.add(delta)
            log.warning("progress write failed", error=str(exc))
        finally:
            self._writing.remove(writing)
            writing[1].set()


def write_counters(pipe: Redis, key: str, delta: StageCounters) -> None:
    """Queue the commands that add ``delta`` to the status hash ``key`` on ``pipe``."""
    for field in ("fetched", "transformed", "fetch_count", "transform_count", "store_count"):
        value = getattr(delta, field)
        if value:
            pipe.hincrby(key, field, value)
    for field in ("fetch_s", "transform_s", "store_s"):
        value = getattr(delta, field)
        if value:
            pipe.hincrbyfloat(key, field, value)
