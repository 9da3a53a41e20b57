"""Listing jobs: find them with SCAN, read them in batches, filter them; for `Client.jobs`, the
`sluice jobs` command and the dashboard alike.

Sluice keeps no index of jobs, so a listing SCANs the server's keyspace for status hashes
(``MATCH {ns}:job:* TYPE hash``, 1,000 keys a call, every namespace's keys walked) and adds the
queue's jobs (jobs written with raw Redis commands have no status hash yet; a started job's
units, ``{id}#{k}``, are not jobs), then reads each job's status hash and queue entry in
pipelined batches of 500. That is O(keys on
the server) per listing; at most ``limit`` jobs are read, and past that the listing says it is
truncated. A job id ending in ``:results`` or ``:blobs`` is not listed (those are a job's
record hashes).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from producer.client.inspect import read_status
from producer.client.stored_ids import read_statuses
from producer.contract.keys import UNIT_SEPARATOR, Keys
from producer.contract.models import JobState, JobStatus
from producer.redis.typed import Redis

SCAN_COUNT = 1000
MAX_LISTED = 20_000  # jobs a listing reads unless told (SLUICE_DASHBOARD_MAX_LISTED's default)
BATCH = 500
NOT_STATUS = (b":results", b":blobs")  # hashes under {ns}:job: that are a job's records
LISTED_STATES = [s for s in JobState if s != JobState.NOT_FOUND]


@dataclass(frozen=True)
class JobList:
    """Listed jobs, newest first; ``truncated`` when more were there than the limit read."""

    jobs: list[JobStatus]
    truncated: bool

    def counts(self) -> dict[str, int]:
        """Jobs per state, every state present (zero when none)."""
        found = Counter(job.state.value for job in self.jobs)
        return {state.value: found[state.value] for state in LISTED_STATES}

    def pipelines(self) -> list[str]:
        return sorted({job.pipeline for job in self.jobs if job.pipeline})

    def select(
        self,
        *,
        state: str | None = None,
        pipeline: str | None = None,
        search: str | None = None,
        queue: str | None = None,
    ) -> list[JobStatus]:
        """The jobs in ``state``, of ``pipeline``, whose id contains ``search`` (any case), in
        ``queue``."""
        needle = (search or "").strip().lower()
        return [
            job
            for job in self.jobs
            if (not state or job.state.value == state)
            and (not pipeline or job.pipeline == pipeline)
            and (not queue or job.queue == queue)
            and (not needle or needle in job.job_id.lower())
        ]


async def list_jobs(redis: Redis, keys: Keys, limit: int) -> JobList:
    """Every job of the namespace (up to ``limit``), newest first."""
    ids, truncated = await _ids(redis, keys, limit)

    async def status(job_id: str) -> JobStatus:
        return await read_status(redis, keys, job_id)

    jobs: list[JobStatus] = []
    for first in range(0, len(ids), BATCH):
        jobs.extend(await read_statuses(redis, keys, ids[first : first + BATCH], status))
    jobs = [job for job in jobs if job.state != JobState.NOT_FOUND]
    jobs.sort(key=lambda j: (j.enqueued_at or 0.0, j.job_id), reverse=True)
    return JobList(jobs, truncated)


async def _ids(redis: Redis, keys: Keys, limit: int) -> tuple[list[bytes], bool]:
    """Stored ids as Redis holds them: bytes, which need not be UTF-8 (`stored_ids`); on a
    sharded layout, every shard's."""
    found: dict[bytes, None] = {}
    for k in keys.every_shard():
        if await _shard_ids(redis, k, limit, found):
            return list(found), True
    return list(found), False


async def _shard_ids(redis: Redis, keys: Keys, limit: int, found: dict[bytes, None]) -> bool:
    """Add one shard's ids to ``found``; True when the limit cut it short."""
    prefix = keys.job("").encode()
    async for raw in redis.zscan_iter(keys.queue, count=SCAN_COUNT):
        if UNIT_SEPARATOR.encode() in raw[0]:  # a unit of a job found by its status hash
            continue
        found[raw[0]] = None
        if len(found) >= limit:
            return True
    pattern = _glob_escape(keys.job("")) + "*"
    async for raw in redis.scan_iter(match=pattern, count=SCAN_COUNT, _type="hash"):
        job_id = raw[len(prefix) :]
        if job_id and not job_id.endswith(NOT_STATUS):
            found[job_id] = None
            if len(found) >= limit:
                return True
    return False


def _glob_escape(text: str) -> str:
    """``text`` with Redis glob characters escaped, to match literally."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
