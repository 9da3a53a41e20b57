"""A budget of bytes held in memory across the stages: fetching waits while it is spent."""

from __future__ import annotations

import asyncio


class ByteBudget:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self._changed = asyncio.Condition()

    async def acquire(self, size: int) -> int:
        """Wait until ``size`` bytes fit, then hold them; returns the amount held.

        An item larger than the whole budget is let through alone rather than never.
        """
        size = min(size, self.capacity)
        async with self._changed:
            await self._changed.wait_for(lambda: self.used + size <= self.capacity)
            self.used += size
        return size

    async def release(self, size: int) -> None:
        if size:
            async with self._changed:
                self.used -= size
                self._changed.notify_all()
