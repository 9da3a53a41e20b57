"""Room under a queue's cap (SLUICE_MAX_QUEUED_JOBS): an enqueue that finds the queue full
waits, with doubling pauses, until SLUICE_ENQUEUE_TIMEOUT_S, then raises QueueFull."""

from __future__ import annotations

from collections.abc import Callable

from producer.contract.errors import QueueFull
from producer.redis.backoff import Backoff


class QueueRoom:
    """Waiting for room under the queue cap: doubling pauses, until the enqueue timeout."""

    def __init__(self, timeout_s: float, full: Callable[[], QueueFull]) -> None:
        self.backoff, self.full = Backoff(timeout_s, first_s=0.05, max_s=1.0), full

    async def wait(self) -> None:
        """Pause before the next try; QueueFull once the timeout would pass."""
        if self.backoff.expired():
            raise self.full()
        await self.backoff.pause()
