"""The worker-wide pipeline: three stages joined by bounded queues, fed by every running job.

    job coroutines ──put──▶ [fetch queue] ─▶ fetch ×N ─▶ [transform queue] ─▶ pool calls ×M
                                                   └──(fetch failed)──┐            │
                                                                      ▼            ▼
                                                               [store queue] ◀─────┘ ─▶ store

Every queue is bounded, and so are the bytes held: when a later stage is slow, the earlier
ones wait, and job coroutines block on `submit`, so arq takes no new jobs (``max_jobs``)
and the backlog stays in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib

from redis.asyncio import Redis

from producer.failover import ReplicaWait
from producer.keys import Keys
from worker.deadlines import Deadlines
from worker.pool import TransformPool
from worker.progress import ProgressWriter
from worker.registry import REGISTRY
from worker.settings import WorkerConfig
from worker.stages.budget import ByteBudget
from worker.stages.fetch import FetchStage, build_fetchers
from worker.stages.items import Item, JobRun, StageCounters
from worker.stages.store import StoreStage
from worker.stages.transform import TransformStage


class Engine:
    def __init__(self, config: WorkerConfig, pool: TransformPool, redis: Redis, keys: Keys):
        self.fetch_queue: asyncio.Queue[Item] = asyncio.Queue(config.fetch_concurrency)
        self.transform_queue: asyncio.Queue[Item] = asyncio.Queue(config.transform_queue_bound)
        self.store_queue: asyncio.Queue[Item] = asyncio.Queue(config.store_queue_size)
        self.budget = ByteBudget(config.max_inflight_bytes)
        self.fetch = FetchStage(
            build_fetchers(REGISTRY.fetchers, config),
            config,
            self.fetch_queue,
            self.transform_queue,
            self.store_queue,
            self.budget,
        )
        self.transform = TransformStage(
            pool, config, self.transform_queue, self.store_queue, self.budget
        )
        self.store = StoreStage(
            redis, keys, self.store_queue, config.store_batch_size, ReplicaWait.of(config, keys)
        )
        self.progress = ProgressWriter(redis, keys)
        self.deadlines = Deadlines()  # the jobs' timeouts, which cut their feeding short
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for name, coro in (
            ("fetch", self.fetch.run()),
            ("transform", self.transform.run()),
            ("store", self.store.run()),
            ("progress", self.progress.run()),
            ("deadlines", self.deadlines.run()),
        ):
            self._tasks.append(asyncio.create_task(coro, name=f"sluice-{name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.fetch.close()

    def begin(self, run: JobRun) -> None:
        self.progress.runs.add(run)

    async def end(self, run: JobRun) -> None:
        """Stop tracking a run, writing its last progress."""
        self.progress.runs.discard(run)
        await self.progress.flush([run])

    async def finish(self, run: JobRun) -> StageCounters:
        """Stop tracking a run that completed; its last progress, for the final write (once
        any progress write of it still on the wire has landed)."""
        self.progress.runs.discard(run)
        await self.progress.settled(run)
        return run.counters.take()

    async def submit(self, item: Item) -> None:
        """Hand one input to the pipeline; waits while the pipeline is full."""
        item.run.item_submitted()
        await self.fetch_queue.put(item)

    @property
    def running(self) -> bool:
        """Whether every stage task is still running (none has crashed or been stopped)."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    @property
    def in_flight(self) -> int:
        return self.fetch_queue.qsize() + self.transform_queue.qsize() + self.store_queue.qsize()
