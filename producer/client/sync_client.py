"""The blocking client: the async `Client` run on a private event loop, for code without one.

Every method is `Client`'s own, wrapped by `blocking` (a coroutine) or `blocking_iter` (an
async iterator), so the two APIs cannot drift apart; tests/test_sync_client.py checks that each
public method of `Client` is here with the same parameters.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, Self, TypeVar

from producer.client.client import Client
from producer.contract.settings import ClientSettings

P = ParamSpec("P")
T = TypeVar("T")


def blocking(
    method: Callable[Concatenate[Client, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[SyncClient, P], T]:
    """``method`` of `Client`, run to its end on the sync client's loop."""

    @functools.wraps(method)
    def call(self: SyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._runner.run(method(self._client, *args, **kwargs))

    return call


def blocking_iter(
    method: Callable[Concatenate[Client, P], AsyncIterator[T]],
) -> Callable[Concatenate[SyncClient, P], Iterator[T]]:
    """``method`` of `Client`, an async iterator, as an iterator run on the client's loop."""

    @functools.wraps(method)
    def call(self: SyncClient, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        it = method(self._client, *args, **kwargs).__aiter__()

        async def step() -> T:
            return await it.__anext__()

        while True:
            try:
                yield self._runner.run(step())
            except StopAsyncIteration:
                return

    return call


class SyncClient:
    """Blocking client. ``with SyncClient() as c: c.wait(c.enqueue("text-stats", [...]))``.

    Not for use inside a running event loop: there, use `Client`.
    """

    def __init__(self, settings: ClientSettings | None = None):
        self._runner = asyncio.Runner()
        self._client = Client(settings)

    @property
    def settings(self) -> ClientSettings:
        return self._client.settings

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._runner.run(self._client.close())
        self._runner.close()

    enqueue = blocking(Client.enqueue)
    enqueue_many = blocking(Client.enqueue_many)
    status = blocking(Client.status)
    results = blocking_iter(Client.results)
    blob = blocking(Client.blob)
    blobs = blocking(Client.blobs)
    wait = blocking(Client.wait)
    events = blocking_iter(Client.events)
    stats = blocking(Client.stats)
    cancel = blocking(Client.cancel)
    retry = blocking(Client.retry)
    failed = blocking(Client.failed)
    failed_ids = blocking(Client.failed_ids)
    workers = blocking(Client.workers)
    pipelines = blocking(Client.pipelines)
    jobs = blocking(Client.jobs)
    schedules = blocking(Client.schedules)
    run_schedule = blocking(Client.run_schedule)
    delete = blocking(Client.delete)
    purge_failed = blocking(Client.purge_failed)
