"""Stage 1: fetch each input's bytes, many at once, by URI scheme."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import structlog

from worker import instrument
from worker.errors import FetchError
from worker.registry import Fetcher, FetcherFactory
from worker.settings import WorkerConfig
from worker.stages.budget import ByteBudget
from worker.stages.items import Item

log = structlog.get_logger("sluice.fetch", stage="fetch")


def build_fetchers(
    factories: Mapping[str, FetcherFactory], config: WorkerConfig
) -> dict[str, Fetcher]:
    """One fetcher per factory (http and https share one), keyed by scheme."""
    made: dict[int, Fetcher] = {}
    return {
        scheme: made.setdefault(id(factory), factory(config))
        for scheme, factory in factories.items()
    }


class FetchStage:
    def __init__(
        self,
        fetchers: Mapping[str, Fetcher],
        config: WorkerConfig,
        inbox: asyncio.Queue[Item],
        to_transform: asyncio.Queue[Item],
        to_store: asyncio.Queue[Item],
        budget: ByteBudget,
    ) -> None:
        self.fetchers = fetchers
        self.max_bytes = config.max_fetch_bytes
        self.inbox, self.to_transform, self.to_store = inbox, to_transform, to_store
        self.budget = budget
        self.workers = config.fetch_concurrency

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for _ in range(self.workers):
                group.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            item = await self.inbox.get()
            if item.run.stopped():
                item.run.items_finished(1)
                continue
            if item.ok:  # one refused before fetching (too long, not UTF-8) is not fetched
                await self._fetch(item)
            instrument.fetched(item)
            counters = item.run.counters
            counters.fetched += 1
            counters.fetch_count += 1
            counters.fetch_s += item.fetch_s
            if item.ok and item.data is not None:
                item.held_bytes = await self.budget.acquire(len(item.data))
                await self.to_transform.put(item)
            else:
                counters.transformed += 1  # it skips the transform stage
                await self.to_store.put(item)

    async def _fetch(self, item: Item) -> None:
        start = time.perf_counter()
        scheme = item.uri.partition(":")[0].lower()
        fetcher = self.fetchers.get(scheme)
        try:
            if fetcher is None:
                known = ", ".join(sorted(self.fetchers))
                raise FetchError(f"no fetcher for scheme {scheme!r}; known schemes: {known}")
            item.data = await fetcher.fetch(item.uri, self.max_bytes)
        except FetchError as exc:
            item.fail(str(exc))
        except Exception as exc:  # a bug in a user's fetcher fails the item, not the worker
            log.warning(
                "fetcher raised",
                job_id=item.run.job_id,
                pipeline=item.run.pipeline.name,
                uri=item.uri,
                error=repr(exc),
            )
            item.fail(f"fetch failed: {type(exc).__name__}: {exc}")
        item.fetch_s = time.perf_counter() - start

    async def close(self) -> None:
        for fetcher in {id(f): f for f in self.fetchers.values()}.values():
            await fetcher.close()
