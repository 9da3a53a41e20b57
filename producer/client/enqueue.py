"""Enqueueing: one job (`enqueue`) or many (`enqueue_many`), checked before anything is
written, admitted under the queue cap in one atomic step per job or per chunk of jobs.

A lost connection or a failover does not fail an enqueue: it is tried again, on the primary
found afresh, for up to SLUICE_ENQUEUE_TIMEOUT_S, and then raises ServerUnavailable. A write
whose earlier try may have landed checks first (`producer.client.landed`), so nothing is written
twice and a job that did land is not refused as a duplicate of itself.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from redis.exceptions import RedisError

from producer.client.bulk import BULK_JOBS, Entry, checked_jobs, entries, job_ids
from producer.client.inputs import Inputs, chunks, small_list
from producer.client.landed import admitted_before, job_landed, push_chunk
from producer.client.options import PipelineRegistry
from producer.client.room import QueueRoom
from producer.client.tracing import publish_span
from producer.contract.enqueue_scripts import ENQUEUE, ENQUEUE_MANY
from producer.contract.errors import InvalidJob, JobExists, QueueFull
from producer.contract.keys import DEFAULT_QUEUE, WAKE_TOKENS, shard_of
from producer.contract.models import JobSpec
from producer.contract.placement import chosen_fields, place, too_many_queues
from producer.contract.settings import ClientSettings
from producer.contract.validation import (
    build_spec,
    check_count,
    check_defer,
    check_input,
    check_job_id,
    check_payload_size,
)
from producer.contract.wire import encode_job, now_ms
from producer.redis.connection import Connected
from producer.redis.failover import ReplicaWait, Tries
from producer.redis.layout import check_layout
from producer.redis.scripts import run_script
from producer.redis.wake import push_wake

CHUNK = 1000  # inputs per RPUSH when a job's inputs go to a list
REGISTRY_CACHE_S = 5.0  # how long enqueue trusts its copy of the pipeline registry


class Enqueueing(Connected):
    """The enqueue side of `Client`."""

    def __init__(self, settings: ClientSettings | None = None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._registry = PipelineRegistry({})
        self._known_until = 0.0
        self._layout_checked = False
        self._wait = ReplicaWait.of(self.settings, self.keys)

    async def enqueue(
        self,
        pipeline: str,
        inputs: Inputs,
        *,
        options: dict[str, Any] | None = None,
        job_id: str | None = None,
        defer_s: float = 0.0,
        queue: str | None = None,
        priority: int = 0,
        timeout_s: float | None = None,
        max_tries: int | None = None,
        result_ttl_s: int | None = None,
        callback_url: str | None = None,
    ) -> str:
        """Enqueue a job and return its id. Raises InvalidJob, JobExists or QueueFull.

        ``queue``: the named queue it waits in (default "default"), taken only by workers
        that serve it (SLUICE_QUEUES); ``priority`` 0-9: ahead of lower-priority work that
        became due up to ``priority`` minutes before it (docs/queues.md); ``timeout_s``,
        ``max_tries``, ``result_ttl_s``: this job's own, instead of the worker's settings;
        ``callback_url``: POSTed, signed, when the job ends (docs/webhooks.md).
        """
        job_id = check_job_id(uuid.uuid4().hex if job_id is None else job_id)
        check_defer(defer_s)
        choices = chosen(queue, priority, timeout_s, max_tries, result_ttl_s, callback_url)
        build_spec(pipeline, None, options, choices)  # fail fast on a bad name or options
        tries = self._tries()
        with self._reachable():
            await self._check_pipeline(pipeline, options, tries)
            return await self._enqueue(pipeline, inputs, options, choices, job_id, defer_s, tries)

    async def enqueue_many(
        self,
        pipeline: str,
        jobs: Iterable[Sequence[str]],
        *,
        options: dict[str, Any] | None = None,
        defer_s: float = 0.0,
        queue: str | None = None,
        priority: int = 0,
        timeout_s: float | None = None,
        max_tries: int | None = None,
        result_ttl_s: int | None = None,
        callback_url: str | None = None,
    ) -> list[str]:
        """Enqueue one job per item of ``jobs`` (each a list of input URIs), all with this
        pipeline and these options, a few hundred jobs per round trip; return their ids in
        the order given, which is the order they start in.

        Every job is checked before any is written: InvalidJob names the first bad one. At
        the queue cap it waits for room as `enqueue` does; QueueFull's ``enqueued`` lists
        the ids admitted before it gave up. ``queue`` and the rest: as for `enqueue`.
        """
        check_defer(defer_s)
        choices = chosen(queue, priority, timeout_s, max_tries, result_ttl_s, callback_url)
        spec = build_spec(pipeline, None, options, choices)
        checked = checked_jobs(jobs, self.settings)
        if not checked:
            return []
        ids = list(job_ids(len(checked)))
        with self._reachable():
            await self._check_pipeline(pipeline, options, self._tries())
            with publish_span(self._queue_key(spec.queue), ids, pipeline) as carrier:
                if carrier:
                    spec = spec.model_copy(update={"trace": carrier})
                enqueued = now_ms()
                batch = entries(spec, checked, ids, enqueued, self.settings)
                if not self.keys.sharded:
                    await self._write_many(spec, batch, enqueued, defer_s)
                else:  # one script call per shard, the shards concurrently
                    groups: dict[int, list[Entry]] = {}
                    for e in batch:
                        groups.setdefault(shard_of(e.job_id, self.keys.shards), []).append(e)
                    writes = (self._write_many(spec, g, enqueued, defer_s) for g in groups.values())
                    await asyncio.gather(*writes)
        return ids

    async def _enqueue(
        self,
        pipeline: str,
        inputs: Inputs,
        options: dict[str, Any] | None,
        choices: dict[str, Any],
        job_id: str,
        defer_s: float,
        tries: Tries,
    ) -> str:
        inline = small_list(inputs, self.settings.inline_inputs_max)
        if inline is not None:
            checked = [check_input(i, v, self.settings) for i, v in enumerate(inline)]
            check_count(len(checked), self.settings)
            spec, total = build_spec(pipeline, checked, options, choices), len(checked)
            await self._admit(job_id, spec, total, defer_s, tries)
            return job_id
        job, arq_job = self.keys.job(job_id), self.keys.arq_job(job_id)
        if await tries.read(lambda: self.redis.exists(job, arq_job)):
            raise JobExists(f"job {job_id} already exists")
        spec = build_spec(pipeline, None, options, choices)
        await self._wait_for_room(spec.queue, job_id, tries)
        try:
            total = await self._write_inputs(job_id, inputs, tries)
            await self._admit(job_id, spec, total, defer_s, tries)
        except BaseException:
            # a refused job leaves no inputs behind
            await asyncio.shield(self.redis.delete(self.keys.inputs(job_id)))
            raise
        return job_id

    def _tries(self) -> Tries:
        """Tries of one enqueue through a failover, for up to SLUICE_ENQUEUE_TIMEOUT_S."""
        return Tries(self.redis, self.settings.enqueue_timeout_s, self._unavailable)

    async def _check_pipeline(
        self, pipeline: str, options: dict[str, Any] | None, tries: Tries
    ) -> None:
        """Refuse a pipeline no worker has registered, or options its schema refuses (once any
        worker has registered; before that the worker checks them when it runs the job).

        The registry is read at most every few seconds, not on every enqueue.
        """
        if not self._layout_checked:  # once: the fleet's shard count is this client's
            await tries.read(lambda: check_layout(self.redis, self.keys, record=self.keys.sharded))
            self._layout_checked = True
        if time.monotonic() > self._known_until:
            registered = await tries.read(lambda: self.redis.hgetall(self.keys.pipelines))
            self._registry = PipelineRegistry(registered)
            self._known_until = time.monotonic() + REGISTRY_CACHE_S
        self._registry.check(pipeline, options)

    async def _write_inputs(self, job_id: str, inputs: Inputs, tries: Tries) -> int:
        key, total = self.keys.inputs(job_id), 0
        await tries.read(lambda: self.redis.delete(key))
        async for chunk in chunks(inputs, CHUNK):
            checked = [check_input(total + i, v, self.settings) for i, v in enumerate(chunk)]
            check_count(total + len(checked), self.settings)
            await self._push(key, checked, total, tries)
            total += len(checked)
        if total == 0:
            raise InvalidJob("a job needs at least one input")
        return total

    async def _push(self, key: str, chunk: list[str], before: int, tries: Tries) -> None:
        in_doubt = False
        while True:
            try:
                ttl_s = self.settings.job_expires_s
                return await push_chunk(self.redis, key, chunk, before, ttl_s, self._wait, in_doubt)
            except (RedisError, OSError) as exc:
                in_doubt = True
                await tries.again(exc)

    async def _admit(
        self, job_id: str, spec: JobSpec, total: int, defer_s: float, tries: Tries
    ) -> None:
        if total == 0:
            raise InvalidJob("a job needs at least one input")
        with publish_span(self._queue_key(spec.queue), [job_id], spec.pipeline) as carrier:
            if carrier:
                spec = spec.model_copy(update={"trace": carrier})
            await self._write_job(job_id, spec, total, defer_s, tries)

    async def _run(self, source: str, keys: list[str], args: list[Any]) -> Any:
        """One of the producer's scripts, followed by a WAIT with SLUICE_REDIS_WAIT_REPLICAS."""
        sha = self._script(source).sha
        return await run_script(self.redis, sha, source, keys, args, self._wait)

    async def _write_job(
        self, job_id: str, spec: JobSpec, total: int, defer_s: float, tries: Tries
    ) -> None:
        enqueued = now_ms()
        envelope = encode_job(spec, enqueued)
        check_payload_size(len(envelope), self.settings)
        due = enqueued + int(defer_s * 1000)
        expires_ms = due - enqueued + self.settings.job_expires_s * 1000
        k = self.keys.for_job(job_id)
        keys = [
            k.named_queue(spec.queue),
            k.arq_job(job_id),
            k.arq_result(job_id),
            k.job(job_id),
            k.inputs(job_id),
            k.wake_for(spec.queue),
            k.shard_queues,
            k.events,
        ]
        wake = 0 if defer_s > 0 else WAKE_TOKENS
        args = [
            job_id,
            envelope,
            place(due, spec.priority),
            expires_ms,
            self._cap,
            enqueued / 1000,
            spec.pipeline,
            total,
            self.settings.job_expires_s,
            min(wake, k.script_wake_tokens),
            _queue_arg(spec),
            self.settings.events_maxlen,
            *chosen_fields(spec, due, defer_s > 0),
        ]
        room, in_doubt = self._room(spec.queue), False
        while True:
            try:
                outcome = await self._run(ENQUEUE, keys, args)
                if outcome == -1 and in_doubt:  # perhaps it is our own earlier try
                    mine = await job_landed(
                        self.redis, self.keys, job_id, envelope, enqueued / 1000, self._wait
                    )
                    outcome = 1 if mine else -1
            except (RedisError, OSError) as exc:
                in_doubt = True
                await tries.again(exc)
                continue
            if outcome == 1:
                if wake and k.sharded:
                    await self._wake_fleet(spec.queue, 1)
                return
            if outcome == -1:
                raise JobExists(f"job {job_id} already exists")
            if outcome == -2:
                raise InvalidJob(too_many_queues(spec.queue))
            await room.wait()

    @property
    def _cap(self) -> int:
        """The cap on one queue's jobs (SLUICE_MAX_QUEUED_JOBS), shared by its shards."""
        cap, shards = self.settings.max_queued_jobs, self.keys.shards
        return cap if shards == 1 else -(-cap // shards)

    async def _wake_fleet(self, queue: str, count: int) -> None:
        """On a sharded layout, wake idle workers of ``queue`` through the fleet's wake list
        (a shard's script pushes none to its own, on which no worker waits)."""
        await push_wake(self.redis, [self.keys.fleet_wake_for(queue)], count)

    async def _wait_for_room(self, queue: str, job_id: str, tries: Tries) -> None:
        room, cap, key = (
            self._room(queue),
            self._cap,
            self.keys.for_job(job_id).named_queue(queue),
        )
        while cap and await tries.read(lambda: self.redis.zcard(key)) >= cap:
            await room.wait()

    async def _write_many(
        self, spec: JobSpec, batch: list[Entry], enqueued: int, defer_s: float
    ) -> None:
        """Admit ``batch`` in chunks, waiting for room under the cap as `enqueue` does (the
        timeout counts from the last job admitted)."""
        due = enqueued + int(defer_s * 1000)
        s, k = self.settings, self.keys.for_job(batch[0].job_id)
        common = [
            self._cap,
            place(due, spec.priority),
            due - enqueued + s.job_expires_s * 1000,
            enqueued / 1000,
            spec.pipeline,
            s.job_expires_s,
            0 if defer_s > 0 else k.script_wake_tokens,
            k.job(""),
            _queue_arg(spec),
            orjson.dumps(chosen_fields(spec, due, defer_s > 0)),
            s.events_maxlen,
        ]
        queue, wake = k.named_queue(spec.queue), k.wake_for(spec.queue)
        keys, done = [queue, wake, k.shard_queues, k.events], 0

        def full() -> QueueFull:
            return self._full(spec.queue, [e.job_id for e in batch[:done]])

        room, tries, in_doubt = QueueRoom(s.enqueue_timeout_s, full), self._tries(), False
        while done < len(batch):
            chunk = batch[done : done + BULK_JOBS]
            args = common + [v for e in chunk for v in (e.job_id, e.envelope, e.total)]
            try:
                admitted = (
                    await admitted_before(self.redis, self.keys, chunk, self._wait)
                    if in_doubt
                    else 0
                )
                if not admitted:
                    admitted = int(await self._run(ENQUEUE_MANY, keys, args))
                if admitted < 0:
                    raise InvalidJob(too_many_queues(spec.queue))
            except (RedisError, OSError) as exc:
                in_doubt = True
                await tries.again(exc)
                continue
            done, in_doubt = done + admitted, False
            if admitted and k.sharded and not defer_s > 0:
                await self._wake_fleet(spec.queue, admitted)
            if admitted:
                room, tries = QueueRoom(s.enqueue_timeout_s, full), self._tries()
            else:
                await room.wait()

    def _queue_key(self, queue: str) -> str:
        """The queue as traces and errors name it (its first shard's key, when sharded)."""
        return self.keys.shard_keys(0).named_queue(queue)

    def _room(self, queue: str) -> QueueRoom:
        return QueueRoom(self.settings.enqueue_timeout_s, lambda: self._full(queue))

    def _full(self, queue: str, enqueued: list[str] | None = None) -> QueueFull:
        return QueueFull(
            f"queue {self._queue_key(queue)} stayed at its cap of "
            f"{self.settings.max_queued_jobs} jobs "
            f"(SLUICE_MAX_QUEUED_JOBS) for {self.settings.enqueue_timeout_s:g} s "
            "(SLUICE_ENQUEUE_TIMEOUT_S); add workers or try later",
            enqueued=enqueued,
        )


def chosen(
    queue: str | None,
    priority: int,
    timeout_s: float | None,
    max_tries: int | None,
    result_ttl_s: int | None,
    callback_url: str | None = None,
) -> dict[str, Any]:
    """The JobSpec fields an enqueue chose (what it left unset keeps JobSpec's defaults)."""
    given = {
        "queue": queue,
        "priority": priority or None,
        "timeout_s": timeout_s,
        "max_tries": max_tries,
        "result_ttl_s": result_ttl_s,
        "callback_url": callback_url,
    }
    return {name: value for name, value in given.items() if value is not None}


def _queue_arg(spec: JobSpec) -> str:
    """The queue's name for the registry of queues ('' for the default, never registered)."""
    return "" if spec.queue == DEFAULT_QUEUE else spec.queue
