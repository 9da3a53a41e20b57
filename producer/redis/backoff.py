"""Doubling pauses between tries, up to a deadline: for a queue at its cap, and for writes
retried while Redis fails over or comes back."""

from __future__ import annotations

import asyncio
import time


class Backoff:
    """Pauses that double from ``first_s`` up to ``max_s``; ``timeout_s`` None: no deadline."""

    def __init__(self, timeout_s: float | None, *, first_s: float, max_s: float) -> None:
        self.deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self.delay, self.max_s = first_s, max_s

    def expired(self) -> bool:
        """Whether the next pause would end past the deadline."""
        return self.deadline is not None and time.monotonic() + self.delay > self.deadline

    async def pause(self) -> None:
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, self.max_s)
