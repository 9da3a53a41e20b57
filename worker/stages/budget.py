"""A budget of bytes held in memory across the stages: fetching waits while it is spent.

Waiters are served first come, first served, so a large input is not starved by a stream
of small ones slipping into the room it waits for. The usual case, room and nobody waiting,
takes no lock and no wait: it is on every input's path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque


class ByteBudget:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, size: int) -> int:
        """Wait until ``size`` bytes fit, then hold them; returns the amount held.

        An item larger than the whole budget is let through alone rather than never.
        """
        size = min(size, self.capacity)
        if not self._waiters and self.used + size <= self.capacity:
            self.used += size
            return size
        waiter = asyncio.get_running_loop().create_future()
        entry = (size, waiter)
        self._waiters.append(entry)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.used -= size  # granted as it was cancelled: give it back
            else:
                with contextlib.suppress(ValueError):  # `_grant` may have dropped it already
                    self._waiters.remove(entry)
            self._grant()
            raise
        return size

    async def release(self, size: int) -> None:
        if size:
            self.used -= size
            self._grant()

    def _grant(self) -> None:
        """Let waiters in, in order, while the first one fits."""
        while self._waiters:
            size, waiter = self._waiters[0]
            if waiter.done():  # cancelled, its task not yet told: its place goes
                self._waiters.popleft()
                continue
            if self.used + size > self.capacity:
                return
            self._waiters.popleft()
            self.used += size
            waiter.set_result(None)
