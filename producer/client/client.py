"""The async client: enqueue jobs, read their status and results, wait for them, cancel,
retry and delete them, and look at the queue, its jobs and its workers."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from redis.typing import EncodableT

from producer.client.events import Watching
from producer.client.inputs import chunks
from producer.client.inspect import read_status
from producer.client.listing import MAX_LISTED, JobList, list_jobs
from producer.client.removal import DELETE, DELETED, LIVE, MISSING, PURGE_PAGE, delete_call
from producer.client.schedules import published_schedule, read_schedules, run_now_id
from producer.client.stored_ids import decode_fields, raw_key, read_statuses
from producer.contract.control_scripts import CANCEL, RETRY, RETRY_INPUTS
from producer.contract.errors import JobNotFound, SluiceError
from producer.contract.liveness import live_since_ms
from producer.contract.models import ItemResult, JobState, JobStatus, QueueStats, WorkerInfo
from producer.contract.queue_stats import read_queue_stats
from producer.contract.schedule_info import ScheduleInfo
from producer.contract.status import Field
from producer.contract.validation import check_job_id
from producer.contract.wire import loads, now_ms, queue_name, read_number, read_record

RESULTS_PAGE = 500  # records per HMGET when reading results
SCAN_MOST = 20_000  # records read by HSCAN, at most, when far fewer than the places asked


class Client(Watching):
    """Async client. ``async with Client() as c: job_id = await c.enqueue(...)``.

    Enqueueing (`enqueue`, `enqueue_many`) is in `producer.client.enqueue`; `events` and
    `wait` in `producer.client.events`; the connection in `producer.redis.connection.Connected`.
    """

    async def status(self, job_id: str) -> JobStatus:
        """The job's state, counts, timestamps and stage timings (state not_found if none).

        Every method that takes a job id raises InvalidJob for one no job can have (an id
        such as ``X:inputs`` would name another job's key)."""
        check_job_id(job_id)
        with self._reachable():
            return await read_status(self.redis, self.keys, job_id)

    async def results(
        self, job_id: str, *, start: int = 0, limit: int | None = None
    ) -> AsyncIterator[ItemResult]:
        """Stored records in input order from index ``start``; unstored inputs are skipped.

        Records are read a page of input places at a time, up to the job's ``total``; where
        the results hash holds far fewer records than the places asked for (a job that has
        just begun, or a total written by another tool, such as 1e12, that would page for
        ever), the records there are are read instead, and the paging stops once as many
        were found as the hash held when it began, or at SLUICE_MAX_INPUTS_PER_JOB."""
        check_job_id(job_id)
        key = self.keys.results(job_id)
        with self._reachable():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hget(self.keys.job(job_id), "total")
                pipe.hlen(key)
                raw_total, held = await pipe.execute()
        # no record lies past the most inputs a job may have (a total past it was written by
        # another tool: the claim does not trust it either)
        total = min(read_number(raw_total), self.settings.max_inputs_per_job)
        end = total if limit is None else min(total, start + limit)
        if held <= SCAN_MOST and end - start > 2 * held + RESULTS_PAGE:
            with self._reachable():
                found = {
                    index: value
                    async for name, value in self.redis.hscan_iter(key, count=RESULTS_PAGE)
                    if start <= (index := _index(name)) < end
                }
            for index in sorted(found):
                yield read_record(index, found[index])
            return
        count = 0
        for first in range(start, end, RESULTS_PAGE):
            if count >= held:
                return
            fields = range(first, min(end, first + RESULTS_PAGE))
            with self._reachable():
                raw = await self.redis.hmget(key, list(fields))
            for index, value in zip(fields, raw, strict=True):
                if value is not None:
                    count += 1
                    yield read_record(index, value)

    async def blob(self, job_id: str, index: int) -> bytes | None:
        """The binary output stored for one input (e.g. a thumbnail), if any."""
        return (await self.blobs(job_id, [index])).get(index)

    async def blobs(self, job_id: str, indexes: Sequence[int]) -> dict[int, bytes]:
        """The binary outputs stored for these inputs, in one round trip; inputs without
        one are left out."""
        check_job_id(job_id)
        if not indexes:
            return {}
        with self._reachable():
            raw = await self.redis.hmget(self.keys.blobs(job_id), [str(i) for i in indexes])
        found = zip(indexes, raw, strict=True)
        return {index: value for index, value in found if value is not None}

    async def stats(self) -> QueueStats:
        """Queue depth (ready, deferred), jobs in progress, the failed set, live workers, and
        how long the oldest ready job has waited: the figures workers export as metrics."""
        with self._reachable():
            return await read_queue_stats(self.redis, self.keys)

    async def cancel(self, job_id: str) -> bool:
        """Stop a queued or running job; its inputs not yet stored are dropped.

        Returns False if the job had already ended; JobNotFound if there is no such job.
        """
        check_job_id(job_id)
        k = self.keys.for_job(job_id)
        keys = [
            k.job(job_id),
            k.named_queue(await self._queue_name(job_id)),
            k.arq_job(job_id),
            k.aborts,
            k.running,
            k.leases,
            k.spec(job_id),
            k.results(job_id),
            k.blobs(job_id),
            k.inputs(job_id),
            k.arq_result(job_id),
            k.webhooks,
            k.shard_webhook_default,
            k.events,
        ]
        args: list[EncodableT] = [
            job_id,
            time.time(),
            self.settings.result_ttl_s,
            self.settings.events_maxlen,
        ]
        with self._reachable():
            if await self._script(CANCEL)(keys=keys, args=args):
                return True
        if (await self.status(job_id)).state == JobState.NOT_FOUND:
            raise JobNotFound(f"no job {job_id}")
        return False

    async def retry(self, job_id: str, *, failed_inputs: bool = False) -> int | None:
        """Re-enqueue a failed or cancelled job; inputs already stored are not redone.

        With ``failed_inputs``, run a *complete* job again for the inputs whose record is an
        error: those records are dropped, the good ones kept; returns how many go again.
        """
        check_job_id(job_id)
        if failed_inputs:
            return await self._retry_inputs(job_id)
        k = self.keys.for_job(job_id)
        queue = await self._queue_name(job_id)
        keys = [
            k.job(job_id),
            k.spec(job_id),
            k.named_queue(queue),
            k.arq_job(job_id),
            k.arq_result(job_id),
            k.leases,
            k.failed,
            k.inputs(job_id),
            k.wake_for(queue),
            k.webhooks,
            k.events,
            k.results(job_id),
            k.blobs(job_id),
        ]
        args = self._requeue_args(job_id)
        with self._reachable():
            outcome = await self._script(RETRY)(keys=keys, args=args)
            if outcome == 1 and k.sharded:
                await self._wake_fleet(queue, 1)
        if outcome == 1:
            return None
        status = await self.status(job_id)
        if status.state == JobState.NOT_FOUND:
            raise JobNotFound(f"no job {job_id}")
        if outcome == 0:
            raise SluiceError(
                f"job {job_id} is {status.state}; only failed or cancelled jobs retry"
            )
        raise SluiceError(
            f"job {job_id} cannot be retried: no copy of the job was kept (its envelope had "
            "expired, or was never written)"
        )

    def _requeue_args(self, job_id: str) -> list[EncodableT]:
        """What RETRY and RETRY_INPUTS take first: the job, now, how long its envelope and its
        status live, the wake tokens and the events kept."""
        s = self.settings
        expires_s = s.job_expires_s
        wake = self.keys.script_wake_tokens
        return [job_id, now_ms(), expires_s * 1000, expires_s, wake, s.events_maxlen]

    async def _retry_inputs(self, job_id: str) -> int:
        k = self.keys.for_job(job_id)
        failed: list[int] = []
        with self._reachable():
            async for index, raw in self.redis.hscan_iter(k.results(job_id), count=1000):
                if b'"ok":false' in raw:  # checked again, record by record, by the script
                    failed.append(int(index))
        queue = await self._queue_name(job_id)
        own = [k.job(job_id), k.spec(job_id), k.named_queue(queue)]
        own += [k.arq_job(job_id), k.arq_result(job_id)]
        keys = [*own, k.leases, k.results(job_id), k.blobs(job_id), k.wake_for(queue)]
        keys += [k.webhooks, k.events]
        args = [*self._requeue_args(job_id), *failed]
        with self._reachable():
            outcome = int(await self._script(RETRY_INPUTS)(keys=keys, args=args))
            if outcome > 0 and k.sharded:
                await self._wake_fleet(queue, 1)
        if outcome > 0:
            return outcome
        status = await self.status(job_id)
        if status.state == JobState.NOT_FOUND:
            raise JobNotFound(f"no job {job_id}")
        if outcome == -1:
            raise SluiceError(
                f"job {job_id} is {status.state}; only a complete job has failed inputs to retry"
            )
        if outcome == -2 and status.failed:
            raise SluiceError(f"job {job_id} cannot be retried: no copy of the job was kept")
        raise SluiceError(f"job {job_id} has no failed inputs to retry")

    async def _queue_name(self, job_id: str) -> str:
        """The queue the job waits in, as its status hash says (a job written with raw
        commands is in the default queue)."""
        with self._reachable():
            raw = await self.redis.hget(self.keys.job(job_id), Field.QUEUE)
        return queue_name(raw.decode("utf-8", "replace") if raw else None)

    async def failed(self, *, limit: int = 100) -> list[JobStatus]:
        """Jobs in the failed set, most recent first."""
        with self._reachable():
            ids = await self.failed_ids(limit)
            return await read_statuses(self.redis, self.keys, ids, self._stored_status)

    async def _stored_status(self, job_id: str) -> JobStatus:
        """The status of an id read from Redis (it may predate the id grammar)."""
        return await read_status(self.redis, self.keys, job_id)

    async def failed_ids(self, limit: int) -> list[bytes]:
        """The ids in the failed set (every shard's), most recent first, as Redis holds them."""
        if not self.keys.sharded:
            ids: list[bytes] = await self.redis.zrevrange(self.keys.failed, 0, limit - 1)
            return ids
        scored: list[tuple[float, bytes]] = []
        for k in self.keys.every_shard():
            got = await self.redis.zrevrange(k.failed, 0, limit - 1, withscores=True)
            scored += [(score, member) for member, score in got]
        return [member for _, member in sorted(scored, reverse=True)[:limit]]

    async def workers(self) -> list[WorkerInfo]:
        """Live workers' heartbeats: id, host, pid, started, last beat, jobs, pool size."""
        now = now_ms()
        with self._reachable():
            names = await self.redis.zrangebyscore(self.keys.workers, live_since_ms(now), "+inf")
            async with self.redis.pipeline(transaction=False) as pipe:
                for name in names:  # written by anyone: maybe not UTF-8
                    pipe.hgetall(raw_key(self.keys.worker, name))
                # a heartbeat key another tool made something else than a hash is left out
                details = await pipe.execute(raise_on_error=False)
        return [
            WorkerInfo.from_hash(decode_fields(d)) for d in details if isinstance(d, dict) and d
        ]

    async def pipelines(self) -> dict[str, Any]:
        """The pipelines live workers have registered, with their descriptions."""
        with self._reachable():
            raw = await self.redis.hgetall(self.keys.pipelines)
        return {name: about for name, about in map(_registered, raw.items()) if about is not None}

    async def schedules(self) -> list[ScheduleInfo]:
        """The schedules workers publish (SLUICE_SCHEDULES): timing, next and last run, the
        last job and its state, and whether a live worker still defines each."""
        with self._reachable():
            return await read_schedules(self.redis, self.keys)

    async def run_schedule(self, name: str) -> str:
        """Enqueue a published schedule's job now, outside its ticks (which go on as
        before); the job's id. SluiceError if no worker publishes the schedule."""
        with self._reachable():
            schedule = await published_schedule(self.redis, self.keys, name)
        spec = schedule.job_spec()
        return await self.enqueue(
            spec.pipeline,
            schedule.inputs,
            options=spec.options,
            job_id=run_now_id(name),
            queue=spec.queue,
            priority=spec.priority,
            timeout_s=spec.timeout_s,
            max_tries=spec.max_tries,
            result_ttl_s=spec.result_ttl_s,
        )

    async def jobs(
        self,
        *,
        state: JobState | str | None = None,
        pipeline: str | None = None,
        search: str | None = None,
        max_listed: int | None = None,
        queue: str | None = None,
    ) -> JobList:
        """Jobs newest first, in ``state``, of ``pipeline``, whose id contains ``search``, in
        ``queue``.

        Found by SCAN (see `producer.client.listing`), at most ``max_listed`` of them (default
        20,000, `MAX_LISTED`) before filtering; ``truncated`` says when there were more.
        """
        wanted = JobState(state).value if state else None  # ValueError names a bad state
        limit = max_listed or MAX_LISTED
        with self._reachable():
            listed = await list_jobs(self.redis, self.keys, limit)
        chosen = listed.select(state=wanted, pipeline=pipeline, search=search, queue=queue)
        return JobList(chosen, listed.truncated)

    async def delete(self, job_id: str) -> None:
        """Delete an ended job (complete, failed or cancelled) with its records and blobs.

        SluiceError if it is queued or running (cancel it first), JobNotFound if there is none.
        """
        check_job_id(job_id)
        with self._reachable():
            outcome = await self._script(DELETE)(**delete_call(self.keys, job_id))
        if outcome == MISSING:
            raise JobNotFound(f"no job {job_id}")
        if outcome == LIVE:
            raise SluiceError(f"job {job_id} is queued or running; cancel it before deleting it")

    async def purge_failed(self) -> int:
        """Delete every job in the failed set, with its records; the number deleted.

        A member of the set that runs again meanwhile (retried) is left alone.
        """
        deleted, script = 0, self._script(DELETE)
        with self._reachable():
            for k in self.keys.every_shard():
                async for page in chunks(self.redis.zscan_iter(k.failed), PURGE_PAGE):
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for member, _ in page:  # written by anyone: maybe not UTF-8
                            await script(**delete_call(self.keys, member), client=pipe)
                        outcomes = await pipe.execute()
                    deleted += sum(1 for outcome in outcomes if outcome == DELETED)
        return deleted


def _registered(entry: tuple[bytes, bytes]) -> tuple[str, Any]:
    """One registry entry; its description None if it is not JSON (anyone may write there)."""
    name, raw = entry
    try:
        return name.decode("utf-8", "replace"), loads(raw)
    except ValueError:
        return name.decode("utf-8", "replace"), None


def _index(name: bytes) -> int:
    """An input's index, from a field of a results hash (-1: not an index; anyone may write)."""
    return int(name) if name.isdigit() and len(name) < 19 else -1
