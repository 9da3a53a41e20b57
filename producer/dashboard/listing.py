"""Listing jobs for the dashboard: find them with SCAN, read them in batches, filter and page.

Sluice keeps no index of jobs, so a listing SCANs the server's keyspace for status hashes
(``MATCH {ns}:job:* TYPE hash``, 1,000 keys a call, every namespace's keys walked) and adds the
queue's members (jobs written with raw Redis commands have no status hash yet), then reads
each job's status hash, queue entry and lease in pipelined batches of 500 (`stored_ids`: an
id there may be anything, even bytes that are not UTF-8, and is listed all the same). That is
O(keys on the server) per refresh, so refreshes are shared: one runs at a time and its
snapshot serves every request for ``REFRESH_S``, however many browsers poll. At most
``SLUICE_DASHBOARD_MAX_LISTED`` jobs are read; past that the snapshot says it is truncated.
A job id ending in ``:results`` or ``:blobs`` is not listed (those are a job's record hashes).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass

from producer.client import Client
from producer.models import JobState, JobStatus
from producer.stored_ids import read_statuses

REFRESH_S = 2.0
SCAN_COUNT = 1000
BATCH = 500
NOT_STATUS = (b":results", b":blobs")  # hashes under {ns}:job: that are a job's records
LISTED_STATES = [s for s in JobState if s != JobState.NOT_FOUND]


@dataclass(frozen=True)
class Snapshot:
    """Every listed job, newest first, as read at ``taken_at``."""

    jobs: list[JobStatus]
    truncated: bool
    taken_at: float

    def counts(self) -> dict[str, int]:
        """Jobs per state, every state present (zero when none)."""
        found = Counter(job.state.value for job in self.jobs)
        return {state.value: found[state.value] for state in LISTED_STATES}

    def pipelines(self) -> list[str]:
        return sorted({job.pipeline for job in self.jobs if job.pipeline})

    def stored_total(self) -> int:
        """Inputs stored over every listed job: its change over time is the throughput."""
        return sum(job.stored for job in self.jobs)

    def finished_since(self, epoch_s: float) -> list[JobStatus]:
        return [j for j in self.jobs if j.finished_at is not None and j.finished_at >= epoch_s]

    def select(
        self, *, state: str | None = None, pipeline: str | None = None, search: str | None = None
    ) -> list[JobStatus]:
        """The jobs in ``state``, of ``pipeline``, whose id contains ``search`` (any case)."""
        needle = (search or "").strip().lower()
        return [
            job
            for job in self.jobs
            if (not state or job.state.value == state)
            and (not pipeline or job.pipeline == pipeline)
            and (not needle or needle in job.job_id.lower())
        ]


class JobListing:
    """Shared, briefly cached listing of one namespace's jobs."""

    def __init__(self, client: Client, limit: int) -> None:
        self.client = client
        self.limit = limit
        self._lock = asyncio.Lock()
        self._snapshot: Snapshot | None = None

    def invalidate(self) -> None:
        """Forget the snapshot, so the next request sees an action's effect at once."""
        self._snapshot = None

    async def snapshot(self, max_age_s: float = REFRESH_S) -> Snapshot:
        async with self._lock:
            current = self._snapshot
            if current is None or time.monotonic() - current.taken_at > max_age_s:
                ids, truncated = await self._ids()
                jobs = await self._read(ids)
                jobs.sort(key=lambda j: (j.enqueued_at or 0.0, j.job_id), reverse=True)
                current = Snapshot(jobs, truncated, time.monotonic())
                self._snapshot = current
            return current

    async def _ids(self) -> tuple[list[bytes], bool]:
        """Stored ids as Redis holds them: bytes, which need not be UTF-8."""
        keys, redis = self.client.keys, self.client.redis
        prefix = keys.job("").encode()
        found: dict[bytes, None] = {}
        async for raw in redis.zscan_iter(keys.queue, count=SCAN_COUNT):
            found[raw[0]] = None
            if len(found) >= self.limit:
                return list(found), True
        pattern = _glob_escape(keys.job("")) + "*"
        async for raw in redis.scan_iter(match=pattern, count=SCAN_COUNT, _type="hash"):
            job_id = raw[len(prefix) :]
            if job_id and not job_id.endswith(NOT_STATUS):
                found[job_id] = None
                if len(found) >= self.limit:
                    return list(found), True
        return list(found), False

    async def _read(self, ids: list[bytes]) -> list[JobStatus]:
        jobs: list[JobStatus] = []
        client = self.client
        for first in range(0, len(ids), BATCH):
            batch = ids[first : first + BATCH]
            jobs.extend(await read_statuses(client.redis, client.keys, batch, client.status))
        return [job for job in jobs if job.state != JobState.NOT_FOUND]


def _glob_escape(text: str) -> str:
    """``text`` with Redis glob characters escaped, to match literally."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def page_of(items: list[JobStatus], page: int, per_page: int) -> tuple[list[JobStatus], int]:
    """One page of ``items`` (pages count from 1) and how many pages there are."""
    pages = max(1, -(-len(items) // per_page))
    page = min(max(page, 1), pages)
    return items[(page - 1) * per_page : page * per_page], pages
