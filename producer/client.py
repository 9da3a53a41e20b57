"""The async client: enqueue jobs, read their status and results, wait for them."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any, Self

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from producer.connection import connect, redact_url, resolve_url
from producer.errors import (
    InvalidJob,
    JobExists,
    JobNotFound,
    QueueFull,
    ServerUnavailable,
    SluiceError,
    WaitTimeout,
)
from producer.inspect import read_status
from producer.keys import ARQ_ABORT_SET, WAKE_TOKENS, Keys
from producer.models import ItemResult, JobState, JobStatus, QueueStats
from producer.queue_stats import WORKER_TTL_S, read_queue_stats
from producer.scripts import CANCEL, ENQUEUE, RETRY
from producer.settings import ClientSettings, load_settings
from producer.tracing import publish_span
from producer.validation import (
    build_spec,
    check_count,
    check_input,
    check_job_id,
    check_payload_size,
)
from producer.wire import encode_job, loads, now_ms

CHUNK = 1000  # inputs per RPUSH when a job's inputs go to a list
RESULTS_PAGE = 500  # records per HMGET when reading results
REGISTRY_CACHE_S = 5.0  # how long enqueue trusts its copy of the pipeline registry

Inputs = Iterable[str] | AsyncIterable[str]


class Client:
    """Async client. ``async with Client() as c: job_id = await c.enqueue(...)``."""

    def __init__(self, settings: ClientSettings | None = None, *, redis: Redis | None = None):
        self.settings = settings or load_settings(ClientSettings)
        self.keys = Keys(self.settings.namespace)
        self._redis = redis
        self._scripts: dict[str, Any] = {}
        self._known: list[str] = []
        self._known_until = 0.0

    @property
    def redis(self) -> Redis:
        if self._redis is None:
            self._redis = connect(self.settings)
        return self._redis

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
            self._scripts.clear()

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
        job_id = check_job_id(job_id or uuid.uuid4().hex)
        build_spec(pipeline, None, options)  # fail fast on a bad name or options
        with self._reachable():
            await self._check_pipeline(pipeline)
            return await self._enqueue(pipeline, inputs, options, job_id, defer_s)

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

    def _script(self, source: str) -> Any:
        """The script, run by EVALSHA (sent whole only when Redis does not have it yet)."""
        if source not in self._scripts:
            self._scripts[source] = self.redis.register_script(source)
        return self._scripts[source]

    async def _check_pipeline(self, pipeline: str) -> None:
        """Refuse a pipeline no worker has registered (when any worker has registered).

        The registry is read at most every few seconds, not on every enqueue.
        """
        if time.monotonic() > self._known_until:
            known = await self.redis.hkeys(self.keys.pipelines)
            self._known = sorted(k.decode() for k in known)
            self._known_until = time.monotonic() + REGISTRY_CACHE_S
        names = self._known
        if names and pipeline not in names:
            raise InvalidJob(f"unknown pipeline {pipeline!r}; registered: {', '.join(names)}")

    async def _write_inputs(self, job_id: str, inputs: Inputs) -> int:
        key, total = self.keys.inputs(job_id), 0
        await self.redis.delete(key)
        async for chunk in _chunks(inputs, CHUNK):
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
        with publish_span(self.keys.queue, job_id, spec.pipeline) as carrier:
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
        deadline = time.monotonic() + self.settings.enqueue_timeout_s
        delay = 0.05
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
            if time.monotonic() + delay > deadline:
                raise self._full()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _wait_for_room(self) -> None:
        cap, deadline, delay = self.settings.max_queued_jobs, time.monotonic(), 0.05
        deadline += self.settings.enqueue_timeout_s
        while cap and await self.redis.zcard(self.keys.queue) >= cap:
            if time.monotonic() + delay > deadline:
                raise self._full()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _full(self) -> QueueFull:
        return QueueFull(
            f"queue {self.keys.queue} stayed at its cap of {self.settings.max_queued_jobs} jobs "
            f"(SLUICE_MAX_QUEUED_JOBS) for {self.settings.enqueue_timeout_s:g} s "
            "(SLUICE_ENQUEUE_TIMEOUT_S); add workers or try later"
        )

    @contextlib.contextmanager
    def _reachable(self) -> Iterator[None]:
        """Turn a connection failure into ServerUnavailable naming the (redacted) server."""
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise self._unavailable(exc) from None

    def _unavailable(self, exc: BaseException) -> ServerUnavailable:
        url = redact_url(resolve_url(self.settings))
        return ServerUnavailable(f"cannot reach Redis at {url}: {exc}")

    async def status(self, job_id: str) -> JobStatus:
        """The job's state, counts, timestamps and stage timings (state not_found if none)."""
        with self._reachable():
            return await read_status(self.redis, self.keys, job_id)

    async def results(
        self, job_id: str, *, start: int = 0, limit: int | None = None
    ) -> AsyncIterator[ItemResult]:
        """Stored records in input order from index ``start``; unstored inputs are skipped."""
        with self._reachable():
            total = int(await self.redis.hget(self.keys.job(job_id), "total") or 0)
        end = total if limit is None else min(total, start + limit)
        for first in range(start, end, RESULTS_PAGE):
            fields = range(first, min(end, first + RESULTS_PAGE))
            with self._reachable():
                raw = await self.redis.hmget(self.keys.results(job_id), list(fields))
            for value in raw:
                if value is not None:
                    yield ItemResult.model_validate(loads(value))

    async def blob(self, job_id: str, index: int) -> bytes | None:
        """The binary output stored for one input (e.g. a thumbnail), if any."""
        with self._reachable():
            value: bytes | None = await self.redis.hget(self.keys.blobs(job_id), str(index))
        return value

    async def wait(
        self, job_id: str, *, timeout_s: float | None = None, poll_s: float = 0.2
    ) -> JobStatus:
        """Poll until the job is complete, failed or not found; WaitTimeout past ``timeout_s``."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            status = await self.status(job_id)
            if status.state.is_final:
                return status
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(f"job {job_id} still {status.state} after {timeout_s:g} s")
            await asyncio.sleep(poll_s)

    async def stats(self) -> QueueStats:
        """Queue depth (ready, deferred), jobs in progress, the failed set, live workers, and
        how long the oldest ready job has waited: the figures workers export as metrics."""
        with self._reachable():
            return await read_queue_stats(self.redis, self.keys)

    async def cancel(self, job_id: str) -> bool:
        """Stop a queued or running job; its inputs not yet stored are dropped.

        Returns False if the job had already ended; JobNotFound if there is no such job.
        """
        keys = [
            self.keys.job(job_id), self.keys.queue, self.keys.arq_job(job_id),
            ARQ_ABORT_SET, self.keys.running,
        ]  # fmt: skip
        now = time.time()
        args = [job_id, now, int(now * 1000), self.settings.result_ttl_s]
        with self._reachable():
            if await self._script(CANCEL)(keys=keys, args=args):
                return True
        if (await self.status(job_id)).state == JobState.NOT_FOUND:
            raise JobNotFound(f"no job {job_id}")
        return False

    async def retry(self, job_id: str) -> None:
        """Re-enqueue a failed or cancelled job; inputs already stored are not redone."""
        keys = [
            self.keys.job(job_id), self.keys.spec(job_id), self.keys.queue,
            self.keys.arq_job(job_id), self.keys.arq_result(job_id), self.keys.arq_retry(job_id),
            self.keys.failed, self.keys.inputs(job_id), self.keys.wake,
        ]  # fmt: skip
        expires_ms = self.settings.job_expires_s * 1000
        args = [job_id, now_ms(), expires_ms, self.settings.job_expires_s, WAKE_TOKENS]
        with self._reachable():
            outcome = await self._script(RETRY)(keys=keys, args=args)
        if outcome == 1:
            return
        status = await self.status(job_id)
        if status.state == JobState.NOT_FOUND:
            raise JobNotFound(f"no job {job_id}")
        if outcome == 0:
            raise SluiceError(
                f"job {job_id} is {status.state}; only failed or cancelled jobs retry"
            )
        raise SluiceError(f"job {job_id} cannot be retried: its payload was malformed")

    async def failed(self, *, limit: int = 100) -> list[JobStatus]:
        """Jobs in the failed set, most recent first."""
        with self._reachable():
            ids = await self.redis.zrevrange(self.keys.failed, 0, limit - 1)
        return [await self.status(raw.decode()) for raw in ids]

    async def workers(self) -> list[dict[str, Any]]:
        """Live workers' heartbeats: id, host, pid, started, last beat, jobs, pool size."""
        now = now_ms()
        with self._reachable():
            names = await self.redis.zrangebyscore(
                self.keys.workers, now - WORKER_TTL_S * 1000, "+inf"
            )
            async with self.redis.pipeline(transaction=False) as pipe:
                for name in names:
                    pipe.hgetall(self.keys.worker(name.decode()))
                details = await pipe.execute()
        return [
            {k.decode(): v.decode("utf-8", "replace") for k, v in d.items()} for d in details if d
        ]

    async def pipelines(self) -> dict[str, Any]:
        """The pipelines live workers have registered, with their descriptions."""
        with self._reachable():
            raw = await self.redis.hgetall(self.keys.pipelines)
        return {k.decode(): loads(v) for k, v in raw.items()}


def _small_list(inputs: Inputs, limit: int) -> Sequence[str] | None:
    """The inputs as a sequence if they are one already and short enough to send inline."""
    if isinstance(inputs, list | tuple) and len(inputs) <= limit:
        return inputs
    return None


async def _chunks(inputs: Inputs, size: int) -> AsyncIterator[list[str]]:
    chunk: list[str] = []
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
