"""The blocking client: the async `Client` run on a private event loop, for code without one."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self

from producer.client import Client
from producer.models import ItemResult, JobStatus, QueueStats
from producer.settings import ClientSettings


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

    def enqueue(
        self,
        pipeline: str,
        inputs: Iterable[str],
        *,
        options: dict[str, Any] | None = None,
        job_id: str | None = None,
        defer_s: float = 0.0,
    ) -> str:
        return self._runner.run(
            self._client.enqueue(pipeline, inputs, options=options, job_id=job_id, defer_s=defer_s)
        )

    def enqueue_many(
        self,
        pipeline: str,
        jobs: Iterable[Sequence[str]],
        *,
        options: dict[str, Any] | None = None,
        defer_s: float = 0.0,
    ) -> list[str]:
        return self._runner.run(
            self._client.enqueue_many(pipeline, jobs, options=options, defer_s=defer_s)
        )

    def status(self, job_id: str) -> JobStatus:
        return self._runner.run(self._client.status(job_id))

    def results(
        self, job_id: str, *, start: int = 0, limit: int | None = None
    ) -> Iterator[ItemResult]:
        """Records in input order, read a page at a time."""
        it = self._client.results(job_id, start=start, limit=limit).__aiter__()

        async def step() -> ItemResult:
            return await it.__anext__()

        while True:
            try:
                yield self._runner.run(step())
            except StopAsyncIteration:
                return

    def blob(self, job_id: str, index: int) -> bytes | None:
        return self._runner.run(self._client.blob(job_id, index))

    def blobs(self, job_id: str, indexes: Sequence[int]) -> dict[int, bytes]:
        return self._runner.run(self._client.blobs(job_id, indexes))

    def wait(
        self, job_id: str, *, timeout_s: float | None = None, poll_s: float = 0.2
    ) -> JobStatus:
        return self._runner.run(self._client.wait(job_id, timeout_s=timeout_s, poll_s=poll_s))

    def stats(self) -> QueueStats:
        return self._runner.run(self._client.stats())
