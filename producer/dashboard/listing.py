"""The dashboard's job listing: `producer.client.listing`'s, shared between requests and
briefly cached.

A listing is O(keys on the server) (see `producer.client.listing`), so refreshes are shared:
one runs at a time and its snapshot serves every request for ``REFRESH_S``, however many
browsers poll. At most ``SLUICE_DASHBOARD_MAX_LISTED`` jobs are read; past that the snapshot
says it is truncated.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from producer.client.client import Client
from producer.client.listing import LISTED_STATES, JobList
from producer.contract.models import JobStatus

__all__ = ["LISTED_STATES", "JobListing", "Snapshot", "page_of"]

REFRESH_S = 2.0


@dataclass(frozen=True)
class Snapshot(JobList):
    """Every listed job, newest first, as read at ``taken_at``."""

    taken_at: float

    def stored_total(self) -> int:
        """Inputs stored over every listed job: its change over time is the throughput."""
        return sum(job.stored for job in self.jobs)

    def finished_since(self, epoch_s: float) -> list[JobStatus]:
        return [j for j in self.jobs if j.finished_at is not None and j.finished_at >= epoch_s]


class JobListing:
    """Shared, briefly cached listing of one namespace's jobs."""

    def __init__(self, client: Client, limit: int) -> None:
        self.client = client
        self.limit = limit
        self._lock = asyncio.Lock()
        self._snapshot: Snapshot | None = None
        self._invalidated = 0  # how many times: a read begun before the last is not kept

    def invalidate(self) -> None:
        """Forget the snapshot, so the next request sees an action's effect at once (a read
        under way, begun before the action, is not kept for it)."""
        self._snapshot = None
        self._invalidated += 1

    async def snapshot(self, max_age_s: float = REFRESH_S) -> Snapshot:
        async with self._lock:
            current = self._snapshot
            if current is None or time.monotonic() - current.taken_at > max_age_s:
                invalidated, began = self._invalidated, time.monotonic()
                listed = await self.client.jobs(max_listed=self.limit)
                current = Snapshot(listed.jobs, listed.truncated, began)
                if invalidated == self._invalidated:
                    self._snapshot = current
            return current


def page_of(items: list[JobStatus], page: int, per_page: int) -> tuple[list[JobStatus], int]:
    """One page of ``items`` (pages count from 1) and how many pages there are."""
    pages = max(1, -(-len(items) // per_page))
    page = min(max(page, 1), pages)
    return items[(page - 1) * per_page : page * per_page], pages
