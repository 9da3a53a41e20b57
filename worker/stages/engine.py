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
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from producer.contract.keys import Keys
from producer.redis.failover import ReplicaWait
from producer.redis.typed import Redis
from worker.errors import described
from worker.fetchers.rate import RateLimiter
from worker.pool.transform_pool import TransformPool
from worker.registry import REGISTRY
from worker.settings import WorkerConfig
from worker.stages.budget import ByteBudget
from worker.stages.fetch import FetchStage, build_fetchers
from worker.stages.items import Item, JobRun, StageCounters
from worker.stages.progress import ProgressWriter
from worker.stages.store import WRITERS as STORE_WRITERS
from worker.stages.store import StoreStage
from worker.stages.transform import TransformStage


class Engine:
    def __init__(self, config: WorkerConfig, pool: TransformPool, redis: Redis, keys: Keys):
        self.fetch_queue: asyncio.Queue[Item] = asyncio.Queue(config.fetch_concurrency)
        self.transform_queue: asyncio.Queue[Item] = asyncio.Queue(config.transform_queue_bound)
        self.store_queue: asyncio.Queue[Item] = asyncio.Queue(config.store_queue_size)
        self.budget = ByteBudget(config.max_inflight_bytes)
        self.pool = pool
        self.fetch = FetchStage(
            build_fetchers(REGISTRY.fetchers, config),
            config,
            self.fetch_queue,
            self.transform_queue,
            self.store_queue,
            self.budget,
            rate_limiter(config, redis, keys),
        )
        self.transform = TransformStage(
            pool, config, self.transform_queue, self.store_queue, self.budget
        )
        self.store = StoreStage(
            redis, keys, self.store_queue, config.store_batch_size, ReplicaWait.of(config, keys)
        )
        self.progress = ProgressWriter(redis, keys, events_maxlen=config.events_maxlen)
        # told (stage, error) when a stage task ends by itself: the worker cannot go on
        self.on_stage_died: Callable[[str, str], None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self, others: Mapping[str, Coroutine[Any, Any, None]] | None = None) -> None:
        """Start the stages, and ``others``: tasks the worker cannot go on without either
        (the jobs' deadlines), watched as the stages are."""
        stages = {
            "fetch": self.fetch.run(),
            "transform": self.transform.run(),
            "store": self.store.run(),
            "progress": self.progress.run(),
        }
        for name, coro in {**stages, **(others or {})}.items():
            task = asyncio.create_task(coro, name=f"sluice-{name}")
            task.add_done_callback(self._ended)
            self._tasks.append(task)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if self._stopping or self.on_stage_died is None:
            return
        self.on_stage_died(task.get_name().removeprefix("sluice-"), describe_end(task))

    async def stop(self) -> None:
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        # a stage that died has been reported (on_stage_died): its exception stays there
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.fetch.close()

    def begin(self, run: JobRun) -> None:
        run.slots = (self.fetch.workers, self.pool.size, STORE_WRITERS)
        run.accounted_at = time.monotonic()
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
        run.account()
        return run.counters.take()

    async def submit(self, item: Item) -> None:
        """Hand one input to the pipeline; waits while the pipeline is full."""
        item.run.item_submitted()
        await self.fetch_queue.put(item)

    @property
    def running(self) -> bool:
        """Whether every stage task is still running (none has crashed or been stopped)."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)


def rate_limiter(config: WorkerConfig, redis: Redis, keys: Keys) -> RateLimiter | None:
    """The limiter of the rate limits configured; None when there are none."""
    rules = config.rate_rules
    return RateLimiter(redis, keys, rules, config.fetch_timeout_s) if rules else None


def describe_end(task: asyncio.Task[object]) -> str:
    """How a task ended, in words, even when its exception cannot be printed."""
    if task.cancelled():
        return "cancelled"
    exc = task.exception()
    if exc is None:
        return "returned"
    return described(exc)
