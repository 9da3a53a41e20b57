"""Enqueueing: one job (`enqueue`) or many (`enqueue_many`), checked before anything is
written, admitted under the queue cap in one atomic step per job or per chunk of jobs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from typing import Any, TypeVar

from producer.bulk import BULK_JOBS, Entry, checked_jobs, entries, job_ids
from producer.connection import Connected
from producer.errors import InvalidJob, JobExists, QueueFull
from producer.keys import ARQ_JOB_PREFIX, WAKE_TOKENS
from producer.models import JobSpec
from producer.options import PipelineRegistry
from producer.scripts import ENQUEUE, ENQUEUE_MANY
from producer.settings import ClientSettings
from producer.tracing import publish_span
from producer.validation import (
    build_spec,
    check_count,
    check_defer,
    check_input,
    check_job_id,
    check_payload_size,
)
from producer.wire import encode_job, now_ms

CHUNK = 1000  # inputs per RPUSH when a job's inputs go to a list
REGISTRY_CACHE_S = 5.0  # how long enqueue trusts its copy of the pipeline registry

Inputs = Iterable[str] | AsyncIterable[str]
T = TypeVar("T")


class Enqueueing(Connected):
    """The enqueue side of `Client`."""

    def __init__(self, settings: ClientSettings | None = None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._registry = PipelineRegistry({})
        self._known_until = 0.0

    async def enqueue(
        self,
        pipeline: str,
        inputs: Inputs,
        *,
        options: dict[str, Any] | None = None,
        job_id: str | None = None,
        defer_s: float = 0.0,
    ) -> str:
        """Enqueue a job and return its id. Raises InvalidJob, JobExists or QueueFull."""
        job_id = check_job_id(uuid.uuid4().hex if job_id is None else job_id)
        check_defer(defer_s)
        build_spec(pipeline, None, options)  # fail fast on a bad name or options
        with self._reachable():
            await self._check_pipeline(pipeline, options)
            return await self._enqueue(pipeline, inputs, options, job_id, defer_s)

    async def enqueue_many(
        self,
        pipeline: str,
        jobs: Iterable[Sequence[str]],
        *,
        options: dict[str, Any] | None = None,
        defer_s: float = 0.0,
    ) -> list[str]:
        """Enqueue one job per item of ``jobs`` (each a list of input URIs), all with this
        pipeline and these options, a few hundred jobs per round trip; return their ids in
        the order given, which is the order they start in.

        Every job is checked before any is written: InvalidJob names the first bad one. At
        the queue cap it waits for room as `enqueue` does; QueueFull's ``enqueued`` lists
        the ids admitted before it gave up.
        """
        check_defer(defer_s)
        spec = build_spec(pipeline, None, options)
        checked = checked_jobs(jobs, self.settings)
        if not checked:
            return []
        ids = list(job_ids(len(checked)))
        with self._reachable():
            await self._check_pipeline(pipeline, options)
            with publish_span(self.keys.queue, ids, pipeline) as carrier:
                if carrier:
                    spec = spec.model_copy(update={"trace": carrier})
                enqueued = now_ms()
                batch = entries(spec, checked, ids, enqueued, self.settings)
                await self._write_many(spec, batch, enqueued, defer_s)
        return ids

    async def _enqueue(
        self, pipeline: str, inputs: Inputs, options: Any, job_id: str, defer_s: float
    ) -> str:
        inline = _small_list(inputs, self.settings.inline_inputs_max)
        if inline is not None:
            checked = [check_input(i, v, self.settings) for i, v in enumerate(inline)]
            check_count(len(checked), self.settings)
            spec, total = build_spec(pipeline, checked, options), len(checked)
            await self._admit(job_id, spec, total, defer_s)
            return job_id
        if await self.redis.exists(self.keys.job(job_id), self.keys.arq_job(job_id)):
            raise JobExists(f"job {job_id} already exists")
        await self._wait_for_room()
        try:
            total = await self._write_inputs(job_id, inputs)
            await self._admit(job_id, build_spec(pipeline, None, options), total, defer_s)
        except BaseException:
            # a refused job leaves no inputs behind
            await asyncio.shield(self.redis.delete(self.keys.inputs(job_id)))
            raise
        return job_id

    async def _check_pipeline(self, pipeline: str, options: dict[str, Any] | None) -> None:
        """Refuse a pipeline no worker has registered, or options its schema refuses (once any
        worker has registered; before that the worker checks them when it runs the job).

        The registry is read at most every few seconds, not on every enqueue.
        """
        if time.monotonic() > self._known_until:
            self._registry = PipelineRegistry(await self.redis.hgetall(self.keys.pipelines))
            self._known_until = time.monotonic() + REGISTRY_CACHE_S
        self._registry.check(pipeline, options)

    async def _write_inputs(self, job_id: str, inputs: Inputs) -> int:
        key, total = self.keys.inputs(job_id), 0
        await self.redis.delete(key)
        async for chunk in chunks(inputs, CHUNK):
            checked = [check_input(total + i, v, self.settings) for i, v in enumerate(chunk)]
            total += len(checked)
            check_count(total, self.settings)
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.rpush(key, *checked)
                pipe.expire(key, self.settings.job_expires_s)
                await pipe.execute()
        if total == 0:
            raise InvalidJob("a job needs at least one input")
        return total

    async def _admit(self, job_id: str, spec: Any, total: int, defer_s: float) -> None:
        if total == 0:
            raise InvalidJob("a job needs at least one input")
        with publish_span(self.keys.queue, [job_id], spec.pipeline) as carrier:
            if carrier:
                spec = spec.model_copy(update={"trace": carrier})
            await self._write_job(job_id, spec, total, defer_s)

    async def _write_job(self, job_id: str, spec: Any, total: int, defer_s: float) -> None:
        enqueued = now_ms()
        envelope = encode_job(spec, enqueued)
        check_payload_size(len(envelope), self.settings)
        score = enqueued + int(defer_s * 1000)
        expires_ms = score - enqueued + self.settings.job_expires_s * 1000
        keys = [
            self.keys.queue,
            self.keys.arq_job(job_id),
            self.keys.arq_result(job_id),
            self.keys.job(job_id),
            self.keys.inputs(job_id),
            self.keys.wake,
        ]
        wake = 0 if defer_s > 0 else WAKE_TOKENS
        room = self._room()
        while True:
            args = [
                job_id,
                envelope,
                score,
                expires_ms,
                self.settings.max_queued_jobs,
                enqueued / 1000,
                spec.pipeline,
                total,
                self.settings.job_expires_s,
                wake,
            ]
            outcome = await self._script(ENQUEUE)(keys=keys, args=args)
            if outcome == 1:
                return
            if outcome == -1:
                raise JobExists(f"job {job_id} already exists")
            await room.wait()

    async def _wait_for_room(self) -> None:
        room = self._room()
        while self.settings.max_queued_jobs and (
            await self.redis.zcard(self.keys.queue) >= self.settings.max_queued_jobs
        ):
            await room.wait()

    async def _write_many(
        self, spec: JobSpec, batch: list[Entry], enqueued: int, defer_s: float
    ) -> None:
        """Admit ``batch`` in chunks, waiting for room under the cap as `enqueue` does (the
        timeout counts from the last job admitted)."""
        score = enqueued + int(defer_s * 1000)
        s = self.settings
        common = [
            s.max_queued_jobs, score, score - enqueued + s.job_expires_s * 1000,
            enqueued / 1000, spec.pipeline, s.job_expires_s, 0 if defer_s > 0 else WAKE_TOKENS,
            self.keys.job(""), ARQ_JOB_PREFIX,
        ]  # fmt: skip
        keys, done = [self.keys.queue, self.keys.wake], 0

        def full() -> QueueFull:
            return self._full([e.job_id for e in batch[:done]])

        room = _Backoff(s.enqueue_timeout_s, full)
        while done < len(batch):
            chunk = batch[done : done + BULK_JOBS]
            args = common + [v for e in chunk for v in (e.job_id, e.envelope, e.total)]
            admitted = int(await self._script(ENQUEUE_MANY)(keys=keys, args=args))
            done += admitted
            if admitted:
                room = _Backoff(s.enqueue_timeout_s, full)
            else:
                await room.wait()

    def _room(self) -> _Backoff:
        return _Backoff(self.settings.enqueue_timeout_s, self._full)

    def _full(self, enqueued: list[str] | None = None) -> QueueFull:
        return QueueFull(
            f"queue {self.keys.queue} stayed at its cap of {self.settings.max_queued_jobs} jobs "
            f"(SLUICE_MAX_QUEUED_JOBS) for {self.settings.enqueue_timeout_s:g} s "
            "(SLUICE_ENQUEUE_TIMEOUT_S); add workers or try later",
            enqueued=enqueued,
        )


class _Backoff:
    """Waiting for room under the queue cap: doubling pauses, until the enqueue timeout."""

    def __init__(self, timeout_s: float, full: Callable[[], QueueFull]) -> None:
        self.deadline, self.delay, self.full = time.monotonic() + timeout_s, 0.05, full

    async def wait(self) -> None:
        """Pause before the next try; QueueFull once the timeout would pass."""
        if time.monotonic() + self.delay > self.deadline:
            raise self.full()
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, 1.0)


def _small_list(inputs: Inputs, limit: int) -> Sequence[str] | None:
    """The inputs as a sequence if they are one already and short enough to send inline."""
    if isinstance(inputs, list | tuple) and len(inputs) <= limit:
        return inputs
    return None


async def chunks(inputs: Iterable[T] | AsyncIterable[T], size: int) -> AsyncIterator[list[T]]:
    """The items of a sync or async iterable, ``size`` at a time (the last chunk may be short)."""
    chunk: list[T] = []
    if isinstance(inputs, AsyncIterable):
        async for value in inputs:
            chunk.append(value)
            if len(chunk) >= size:
                yield chunk
                chunk = []
    else:
        for value in inputs:
            chunk.append(value)
            if len(chunk) >= size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk
