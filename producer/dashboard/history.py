"""The overview's recent history: queue depth and throughput sampled into a ring buffer.

A background task samples every ``SAMPLE_S``: the queue figures (one Lua script, cheap) always,
and the inputs stored over all listed jobs (a job listing, see `listing`) only while someone
has looked at the dashboard in the last ``VIEWED_S``, so an unwatched dashboard never SCANs.
The buffer holds ``WINDOW_S`` of samples, in this process only (gone on restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from dataclasses import dataclass

from redis.exceptions import RedisError

from producer.client.client import Client
from producer.contract.errors import SluiceError
from producer.dashboard.listing import JobListing

SAMPLE_S = 2.0
WINDOW_S = 600.0
VIEWED_S = 60.0
RATE_WINDOW_S = 60.0  # throughput is averaged over this much of the history


@dataclass(frozen=True)
class Sample:
    """One reading: when, the queue depth, jobs running, inputs stored so far (if read)."""

    at: float
    ready: int
    deferred: int
    in_progress: int
    stored: int | None


class History:
    """A ring buffer of samples and the task that fills it."""

    def __init__(self, client: Client, listing: JobListing, sample_s: float = SAMPLE_S) -> None:
        self.client = client
        self.listing = listing
        self.sample_s = sample_s
        self.samples: deque[Sample] = deque(maxlen=int(WINDOW_S / sample_s) + 1)
        self.last_viewed = 0.0

    def viewed(self) -> None:
        """Someone is looking: sample throughput too for the next ``VIEWED_S``."""
        self.last_viewed = time.monotonic()

    async def sample(self) -> Sample:
        stats = await self.client.stats()
        stored = None
        if time.monotonic() - self.last_viewed < VIEWED_S:
            stored = (await self.listing.snapshot()).stored_total()
        reading = Sample(time.time(), stats.ready, stats.deferred, stats.in_progress, stored)
        self.samples.append(reading)
        return reading

    async def run(self) -> None:
        """Sample forever; a Redis outage leaves a gap in the chart, not a dead task."""
        while True:
            with contextlib.suppress(SluiceError, RedisError, OSError):
                await self.sample()
            await asyncio.sleep(self.sample_s)

    def throughput(self) -> float | None:
        """Inputs stored per second over the last ``RATE_WINDOW_S`` (None: too few samples)."""
        read = [s for s in self.samples if s.stored is not None]
        if len(read) < 2:
            return None
        last = read[-1]
        first = next(s for s in read if s.at >= last.at - RATE_WINDOW_S)
        if last.at <= first.at:
            return None
        assert first.stored is not None and last.stored is not None
        # jobs expiring or deleted lower the sum; never report a negative rate
        return max(0, last.stored - first.stored) / (last.at - first.at)

    def depth_chart(self, width: int = 600, height: int = 120) -> dict[str, object]:
        """SVG polyline points for queue depth (ready + deferred) and jobs in progress."""
        samples = list(self.samples)
        now = time.time()
        # the x axis spans the history gathered so far: a minute at least, WINDOW_S at most
        span = min(WINDOW_S, max(60.0, now - samples[0].at if samples else 0.0))
        peak = max([s.ready + s.deferred for s in samples] + [s.in_progress for s in samples] + [1])

        def points(values: list[tuple[float, int]]) -> str:
            return " ".join(
                f"{width * (1 - (now - at) / span):.1f},{height * (1 - v / peak):.1f}"
                for at, v in values
            )

        return {
            "width": width,
            "height": height,
            "peak": peak,
            "depth": points([(s.at, s.ready + s.deferred) for s in samples]),
            "running": points([(s.at, s.in_progress) for s in samples]),
            "samples": len(samples),
            "minutes": math.ceil(span / 60),
        }
