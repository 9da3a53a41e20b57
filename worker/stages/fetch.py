"""Stage 1: fetch each input's bytes, many at once, by URI scheme.

Fetchers may be the user's own: whatever one raises or returns for an input, that input
fails with the reason and the stage goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import structlog

from worker.errors import FetchError, ItemError, JobFailed, described, reason_of
from worker.fetchers import rate
from worker.fetchers.rate import RateLimiter
from worker.observe import instrument
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
        rates: RateLimiter | None = None,
    ) -> None:
        self.fetchers = fetchers
        self.max_bytes = config.max_fetch_bytes
        self.inbox, self.to_transform, self.to_store = inbox, to_transform, to_store
        self.budget = budget
        self.rates = rates  # None: no rate limits configured, nothing to check per fetch
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
            instrument.fetched(
                item.run.pipeline.name, item.fetch_s, None if item.ok else item.error or ""
            )
            counters = item.run.counters
            counters.fetched += 1
            counters.fetch_count += 1
            counters.fetch_s += item.fetch_s
            if item.rate_wait_s:
                counters.rate_wait_count += 1
                counters.rate_wait_s += item.rate_wait_s
            if item.ok and item.data is not None:
                item.held_bytes = await self.budget.acquire(len(item.data))
                await self.to_transform.put(item)
            else:
                counters.transformed += 1  # it skips the transform stage
                await self.to_store.put(item)

    async def _fetch(self, item: Item) -> None:
        """Fetch one input; the time it waited for rate limits is told apart from the rest."""
        start = time.perf_counter()
        gate = None if self.rates is None else self.rates.gate(item.run.pipeline.name, item.uri)
        token = None if gate is None else rate.CURRENT.set(gate)
        try:
            if gate is not None:
                await gate.open()
            # one that waited for its slot may find its job cancelled meanwhile: no request
            if gate is None or not item.run.stopped():
                item.data = await self._bytes_of(item.uri)
        except JobFailed as exc:  # from a user's fetcher: the whole job is to fail
            self._fail_job(item, reason_of(exc))
        except ItemError as exc:
            item.fail(reason_of(exc))
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the stage is stopping
            self._fetcher_raised(item, exc)  # a fetcher's own CancelledError
        except BaseException as exc:  # a user's fetcher, even one calling sys.exit()
            self._fetcher_raised(item, exc)
        finally:
            if token is not None:
                rate.CURRENT.reset(token)
        item.rate_wait_s = 0.0 if gate is None else gate.waited_s
        item.fetch_s = time.perf_counter() - start - item.rate_wait_s

    async def _bytes_of(self, uri: str) -> bytes:
        scheme = uri.partition(":")[0].lower()
        fetcher = self.fetchers.get(scheme)
        if fetcher is None:
            known = ", ".join(sorted(self.fetchers))
            raise FetchError(f"no fetcher for scheme {scheme!r}; known schemes: {known}")
        data = await fetcher.fetch(uri, self.max_bytes)
        if type(data) is not bytes:  # a user's fetcher may return anything
            if not issubclass(type(data), bytes | bytearray | memoryview):
                raise FetchError(f"fetcher returned {type(data).__name__}, expected bytes")
            data = bytes(memoryview(data))
        if len(data) > self.max_bytes:
            raise FetchError(
                f"fetcher returned {len(data)} bytes, over the limit of {self.max_bytes} bytes"
            )
        return data

    def _fetcher_raised(self, item: Item, exc: BaseException) -> None:
        """A bug in a user's fetcher fails the item, not the worker."""
        error = described(exc)
        log.warning("fetcher raised", **item.log_fields(), error=error)
        item.fail(f"fetch failed: {error}")

    @staticmethod
    def _fail_job(item: Item, message: str) -> None:
        if item.fail_job(message):
            log.warning("fetcher failed the job", **item.log_fields(), error=message)

    async def close(self) -> None:
        for fetcher in {id(f): f for f in self.fetchers.values()}.values():
            await fetcher.close()
